//! Golden cache keys: `testdata/keys/solver-golden.toml` pins the key of one vertex per op kind,
//! with fixed input keys and content digests, so any change to the formula or to a cache map
//! object (see [`crate::key`]) fails here. On a deliberate change, bump
//! [`KEY_SCHEMA`](crate::key::KEY_SCHEMA) and paste the values this test prints.

use std::collections::BTreeMap;

use dray_llb::{
    Copy, Digest, ExecMeta, ExecMount, ExecOp, FileAction, FileOp, FileStep, ImageRef, Input,
    MergeOp, Mkdir, MountKind, NetMode, Node, Op, Platform, SecurityMode, SourceOp,
};

use crate::cachemap;
use crate::key::{CacheMap, DepKey, KEY_SCHEMA, ResolvedDep, cache_key};

fn input(name: &str) -> Input {
    Input {
        node: Digest::of(name),
        output: 0,
    }
}

/// Fills a cache map's deps with fixed values: input `i`'s key is `sha256("key<i>")`, its
/// content hash `sha256("content<i>")`.
fn key_of(cm: &CacheMap) -> Digest {
    let deps: Vec<ResolvedDep> = cm
        .deps
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            DepKey::Definition { selector } => ResolvedDep::Key {
                key: Digest::of(format!("key{i}")),
                selector: selector.clone(),
            },
            DepKey::Content { selectors } => ResolvedDep::Content {
                digest: Digest::of(format!("content{i}")),
                selectors: selectors.iter().map(|s| s.path.clone()).collect(),
            },
        })
        .collect();
    cache_key(&cm.digest(), 0, &deps)
}

fn exec_node(env: &[&str]) -> (Node, ExecOp) {
    exec_node_with_proxy(env, &[])
}

fn exec_node_with_proxy(env: &[&str], proxy_env: &[&str]) -> (Node, ExecOp) {
    let op = ExecOp {
        meta: ExecMeta {
            args: vec!["sh".into(), "-c".into(), "make".into()],
            env: env.iter().map(|s| (*s).to_owned()).collect(),
            cwd: "/src".into(),
            user: String::new(),
            hostname: None,
            proxy_env: proxy_env.iter().map(|s| (*s).to_owned()).collect(),
        },
        mounts: vec![
            ExecMount {
                input: Some(0),
                dest: "/".into(),
                selector: None,
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            },
            ExecMount {
                input: Some(1),
                dest: "/ctx".into(),
                selector: Some("/sub".into()),
                readonly: true,
                output: None,
                kind: MountKind::Bind,
            },
        ],
        network: NetMode::Sandbox,
        security: SecurityMode::Sandbox,
    };
    let node = Node {
        inputs: vec![input("base"), input("ctx")],
        op: Op::Exec(op.clone()),
        platform: Some(Platform::linux("amd64")),
    };
    (node, op)
}

fn copy_node(src: &str) -> (Node, FileOp) {
    let op = FileOp {
        actions: vec![FileStep {
            input: dray_llb::ActionInput::Input(0),
            secondary_input: Some(dray_llb::ActionInput::Input(1)),
            output: Some(0),
            action: FileAction::Copy(Copy {
                src: src.into(),
                dest: "/app/".into(),
                create_dest_path: true,
                ..Copy::default()
            }),
        }],
    };
    let node = Node {
        inputs: vec![input("base"), input("context")],
        op: Op::File(op.clone()),
        platform: None,
    };
    (node, op)
}

fn computed() -> BTreeMap<&'static str, Digest> {
    let mut out = BTreeMap::new();
    out.insert("source-scratch", key_of(&cachemap::scratch()));
    let img = Node {
        inputs: vec![],
        op: Op::Source(SourceOp::image(ImageRef::parse("alpine:3.19").unwrap())),
        platform: Some(Platform::linux("arm64")),
    };
    out.insert(
        "source-image",
        key_of(&cachemap::image(
            &img,
            "docker-image",
            &Digest::of("manifest"),
        )),
    );
    let (node, op) = exec_node(&["PATH=/bin", "HTTP_PROXY=http://proxy:3128"]);
    out.insert("exec", key_of(&cachemap::exec(&node, &op)));
    let (node, op) = copy_node("/src/app/main.rs");
    out.insert("file-copy", key_of(&cachemap::file(&node, &op)));
    let mkdir = FileOp {
        actions: vec![FileStep {
            input: dray_llb::ActionInput::Input(0),
            secondary_input: None,
            output: Some(0),
            action: FileAction::Mkdir(Mkdir {
                path: "/work".into(),
                mode: 0o755,
                make_parents: true,
                owner: None,
                timestamp: Some(0),
            }),
        }],
    };
    let node = Node {
        inputs: vec![input("base")],
        op: Op::File(mkdir.clone()),
        platform: None,
    };
    out.insert("file-mkdir", key_of(&cachemap::file(&node, &mkdir)));
    let merge = Node {
        inputs: vec![input("a"), input("b")],
        op: Op::Merge(MergeOp {}),
        platform: None,
    };
    out.insert("merge", key_of(&cachemap::merge(&merge)));
    out
}

#[test]
fn golden_keys() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/keys/solver-golden.toml"
    );
    let computed = computed();
    let printed: String = computed
        .iter()
        .map(|(k, v)| format!("{k} = \"{v}\"\n"))
        .collect();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}\nexpected contents of [keys]:\n{printed}");
    });
    let file: toml::Table = text.parse().expect("valid TOML");
    assert_eq!(
        file.get("schema").and_then(|v| v.as_str()),
        Some(KEY_SCHEMA),
        "schema"
    );
    let keys = file
        .get("keys")
        .and_then(|v| v.as_table())
        .expect("a [keys] table");
    assert_eq!(keys.len(), computed.len(), "computed:\n{printed}");
    for (name, digest) in &computed {
        let pinned = keys.get(*name).and_then(|v| v.as_str());
        assert_eq!(
            pinned,
            Some(digest.to_string().as_str()),
            "golden key {name} changed; computed:\n{printed}"
        );
    }
}

#[test]
fn key_ignores_proxy_env_and_full_copy_paths() {
    let (with_proxy, op) = exec_node(&["PATH=/bin", "HTTP_PROXY=http://proxy:3128"]);
    let (without, op2) = exec_node(&["PATH=/bin"]);
    assert_eq!(
        key_of(&cachemap::exec(&with_proxy, &op)),
        key_of(&cachemap::exec(&without, &op2))
    );
    let (proxied, op4) = exec_node_with_proxy(&["PATH=/bin"], &["HTTPS_PROXY=http://p:1"]);
    assert_eq!(
        key_of(&cachemap::exec(&proxied, &op4)),
        key_of(&cachemap::exec(&without, &op2))
    );
    let (changed, op3) = exec_node(&["PATH=/usr/bin"]);
    assert_ne!(
        key_of(&cachemap::exec(&without, &op2)),
        key_of(&cachemap::exec(&changed, &op3))
    );
    // Mount selectors go into the dep, not the op digest.
    let cm = cachemap::exec(&without, &op2);
    assert_eq!(
        cm.deps[1],
        DepKey::Definition {
            selector: "/sub".into()
        }
    );
    // The same base name from another directory: the op digest is equal; the content dep (which
    // hashes the full path) tells them apart.
    let (a, opa) = copy_node("/src/app/main.rs");
    let (b, opb) = copy_node("/other/main.rs");
    let (cma, cmb) = (cachemap::file(&a, &opa), cachemap::file(&b, &opb));
    assert_eq!(cma.digest(), cmb.digest());
    assert_ne!(cma.deps, cmb.deps);
}
