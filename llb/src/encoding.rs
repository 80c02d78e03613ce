//! The canonical encoding of a [`Node`], whose sha256 is the node's digest.
//!
//! **Changing anything in this table changes every node digest, and so re-keys every cache.**
//! Do it deliberately: bump [`SCHEMA_VERSION`], update the table, and re-pin the golden digests
//! in `testdata/keys/llb-golden.toml` (the `golden` test prints the new entries).
//!
//! # Format
//!
//! Compact JSON (no whitespace) of one object, produced from the serde form of [`Node`] with:
//!
//! - **object keys sorted** by their UTF-8 bytes at every level, regardless of how the structs
//!   declare their fields or of serde_json's `preserve_order` feature;
//! - **no floats** (all numbers are `u32`/`u64`/`i64`; a float is a programming error);
//! - **explicit defaults**: every field is always present, `None` is `null`, empty lists are
//!   `[]`. No `skip_serializing_if` anywhere, so adding a field is always a visible schema change;
//! - strings escaped by serde_json (UTF-8 passes through, `"`/`\`/controls escaped).
//!
//! # What is encoded
//!
//! | key | value | notes |
//! |---|---|---|
//! | `schema` | `"dray-llb/v1"` | [`SCHEMA_VERSION`] |
//! | `inputs` | `[{"node": "sha256:…", "output": n}, …]` | in order; the Merkle link |
//! | `platform` | `null` or `{"architecture", "os", "variant"}` | normalized ([`Platform`](crate::Platform)) |
//! | `op` | `{"source": …}` / `{"exec": …}` / `{"file": …}` / `{"merge": {}}` | externally tagged, snake_case |
//! | `op.source` | `{"attrs", "id"}` | `id` is the [`SourceId`](crate::SourceId) string, e.g. `docker-image://docker.io/library/alpine:latest`; `attrs` is `"none"`, `{"local": {"exclude_patterns", "follow_paths", "include_patterns"}}` or `{"http": {"checksum", "filename", "mode"}}` |
//! | `op.exec.meta` | `{"args", "cwd", "env", "hostname", "user"}` | `env` is an ordered list of `K=V`: order matters |
//! | `op.exec.mounts[]` | `{"dest", "input", "kind", "output", "readonly", "selector"}` | `kind` is `"bind"`, `{"cache": {"id", "sharing"}}`, `{"tmpfs": {"size"}}`, `{"secret"/"ssh": {"gid", "id", "mode", "optional", "uid"}}` |
//! | `op.exec.network` / `security` | `"sandbox"`, `"host"`, `"none"` / `"sandbox"`, `"insecure"` | |
//! | `op.file.actions[]` | `{"action", "input", "output", "secondary_input"}` | inputs are `{"input": i}` (node input) or `{"action": j}` (earlier step) |
//! | `op.file…action` | `{"copy": {…all Copy fields…}}`, `{"mkdir": …}`, `{"mkfile": …}`, `{"rm": …}`, `{"symlink": …}` | owners are `{"group", "user"}` of `{"id": n}`/`{"name": s}`; modes `{"octal": n}`/`{"symbolic": s}` |
//!
//! # What is not encoded
//!
//! - [`OpMetadata`](crate::OpMetadata): names, source locations, `ignore_cache`.
//! - [`ExecMeta::proxy_env`](crate::ExecMeta::proxy_env): `HTTP_PROXY` and friends reach the
//!   process but never identify it (BuildKit's `ProxyEnv` is likewise kept out of cache keys).
//! - Anything resolved later: image manifest digests (unless pinned in the reference), secret
//!   contents, the contents of local sources. Those enter the *cache key* (architecture §B3),
//!   not the node digest.

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::op::Node;

/// The schema tag embedded in every node encoding. Bump on any encoding change.
pub const SCHEMA_VERSION: &str = "dray-llb/v1";

/// The key the schema tag is stored under.
const SCHEMA_KEY: &str = "schema";

impl Node {
    /// The canonical bytes of this node (see the [module docs](crate::encoding)).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Cannot fail: every type in a Node serializes to JSON with string map keys and integer
        // numbers, and no Serialize impl in this crate returns an error. The golden test covers
        // every op kind.
        let mut value = serde_json::to_value(self).expect("a Node always serializes to JSON");
        if let Value::Object(map) = &mut value {
            map.insert(
                SCHEMA_KEY.to_owned(),
                Value::String(SCHEMA_VERSION.to_owned()),
            );
            // Proxy settings are not part of what a RUN *is* (BuildKit keeps them out of the
            // cache key too): drop them so that builds behind different proxies share nodes.
            if let Some(Value::Object(meta)) = map
                .get_mut("op")
                .and_then(|op| op.get_mut("exec"))
                .and_then(|exec| exec.get_mut("meta"))
            {
                meta.remove("proxy_env");
            }
        }
        let value = sorted(value);
        debug_assert!(
            !has_float(&value),
            "floats are not allowed in the canonical encoding"
        );
        serde_json::to_vec(&value).expect("a JSON value always serializes")
    }

    /// The node's digest: sha256 of [`Node::canonical_bytes`].
    pub fn digest(&self) -> Digest {
        Digest::of(self.canonical_bytes())
    }
}

/// Rebuilds `value` with every object's keys inserted in sorted order, so that the output is
/// sorted whether serde_json's `Map` is a `BTreeMap` or (with `preserve_order`) an `IndexMap`.
pub(crate) fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{MergeOp, Op};
    use crate::{Input, Platform};

    #[test]
    fn encoding_is_sorted_compact_and_versioned() {
        let node = Node {
            inputs: vec![Input {
                node: Digest::of("a"),
                output: 1,
            }],
            op: Op::Merge(MergeOp {}),
            platform: Some(Platform::linux("amd64")),
        };
        let text = String::from_utf8(node.canonical_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"inputs\":[{{\"node\":\"{}\",\"output\":1}}],\"op\":{{\"merge\":{{}}}},\
                 \"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\",\"variant\":null}},\
                 \"schema\":\"dray-llb/v1\"}}",
                Digest::of("a")
            )
        );
        assert_eq!(node.digest(), Digest::of(text));
    }

    #[test]
    fn sorted_orders_nested_keys() {
        let v: Value = serde_json::from_str(r#"{"b":{"z":1,"a":[{"y":1,"x":2}]},"a":0}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&sorted(v)).unwrap(),
            r#"{"a":0,"b":{"a":[{"x":2,"y":1}],"z":1}}"#
        );
    }
}
