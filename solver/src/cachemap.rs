//! Building each op's [`CacheMap`] (the tables are in [`crate::key`]). Pure functions: the only
//! outside facts they take are already resolved (an image's manifest digest, the build nonce).

use serde_json::{Value, json};

use dray_llb::{ActionInput, Digest, ExecOp, FileAction, FileOp, Node, SourceOp};

use crate::fs::contenthash::ContentSelector;
use crate::key::{CacheMap, DepKey};

/// Environment variables left out of exec keys: they change how things are fetched, not what.
pub(crate) const PROXY_ENV: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
];

fn platform(node: &Node) -> Value {
    serde_json::to_value(&node.platform).unwrap_or(Value::Null)
}

/// `scratch://`.
pub(crate) fn scratch() -> CacheMap {
    CacheMap {
        object: json!({"op": "source", "id": "scratch://"}),
        deps: Vec::new(),
    }
}

/// An image source pinned to `manifest` (`scheme` is `docker-image` or `oci-layout`).
pub(crate) fn image(node: &Node, scheme: &str, manifest: &Digest) -> CacheMap {
    CacheMap {
        object: json!({
            "op": "source",
            "scheme": scheme,
            "manifest": manifest.to_string(),
            "platform": platform(node),
        }),
        deps: Vec::new(),
    }
}

/// A local source: keyed per build by `nonce`.
pub(crate) fn local(source: &SourceOp, nonce: &str) -> CacheMap {
    CacheMap {
        object: json!({
            "op": "source",
            "id": source.id.to_string(),
            "attrs": serde_json::to_value(&source.attrs).unwrap_or(Value::Null),
            "nonce": nonce,
        }),
        deps: Vec::new(),
    }
}

/// An exec op: proxy env out, mount selectors moved into the deps.
pub(crate) fn exec(node: &Node, op: &ExecOp) -> CacheMap {
    let env: Vec<&String> = op
        .meta
        .env
        .iter()
        .filter(|e| {
            let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            !PROXY_ENV.contains(&k)
        })
        .collect();
    let mounts: Vec<Value> = op
        .mounts
        .iter()
        .map(|m| {
            json!({
                "dest": m.dest,
                "input": m.input,
                "kind": serde_json::to_value(&m.kind).unwrap_or(Value::Null),
                "output": m.output,
                "readonly": m.readonly,
            })
        })
        .collect();
    let object = json!({
        "op": "exec",
        "meta": {
            "args": op.meta.args,
            "cwd": op.meta.cwd,
            "env": env,
            "hostname": op.meta.hostname,
            "user": op.meta.user,
        },
        "mounts": mounts,
        "network": serde_json::to_value(op.network).unwrap_or(Value::Null),
        "security": serde_json::to_value(op.security).unwrap_or(Value::Null),
        "platform": platform(node),
    });
    let deps = (0..node.inputs.len())
        .map(|i| {
            let selectors: Vec<&str> = op
                .mounts
                .iter()
                .filter(|m| m.input == u32::try_from(i).ok())
                .filter_map(|m| m.selector.as_deref())
                .collect();
            DepKey::Definition {
                selector: selectors.join(","),
            }
        })
        .collect();
    CacheMap { object, deps }
}

/// The last component of a copy source (`/a/b/` → `b`, `/` → `/`).
pub(crate) fn base_name(src: &str) -> String {
    src.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("/")
        .to_owned()
}

/// A file op: copy sources reduced to base names; copy-only inputs become content deps.
pub(crate) fn file(node: &Node, op: &FileOp) -> CacheMap {
    let actions: Vec<Value> = op
        .actions
        .iter()
        .map(|step| {
            let mut step = step.clone();
            if let FileAction::Copy(c) = &mut step.action {
                c.src = base_name(&c.src);
            }
            serde_json::to_value(&step).unwrap_or(Value::Null)
        })
        .collect();
    let object = json!({"op": "file", "actions": actions, "platform": platform(node)});
    let deps = (0..node.inputs.len())
        .map(|i| {
            let i = ActionInput::Input(u32::try_from(i).unwrap_or(u32::MAX));
            let edited = op.actions.iter().any(|s| s.input == i);
            let selectors: Vec<ContentSelector> = op
                .actions
                .iter()
                .filter(|s| s.secondary_input == Some(i))
                .filter_map(|s| match &s.action {
                    FileAction::Copy(c) => Some(ContentSelector {
                        path: c.src.clone(),
                        follow_links: c.follow_symlinks,
                        wildcard: c.allow_wildcard,
                        include: c.include_patterns.clone(),
                        exclude: c.exclude_patterns.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if edited || selectors.is_empty() {
                DepKey::Definition {
                    selector: String::new(),
                }
            } else {
                DepKey::Content { selectors }
            }
        })
        .collect();
    CacheMap { object, deps }
}

/// A merge of `node.inputs`.
pub(crate) fn merge(node: &Node) -> CacheMap {
    CacheMap {
        object: json!({"op": "merge", "inputs": node.inputs.len(), "platform": platform(node)}),
        deps: node
            .inputs
            .iter()
            .map(|_| DepKey::Definition {
                selector: String::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name("/a/b/c.txt"), "c.txt");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/*.rs"), "*.rs");
    }
}
