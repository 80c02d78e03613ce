//! Cache keys: the versioned formula of architecture §B3, and the JSON preimage stored with each.
//!
//! **Changing anything in this module's tables changes cache keys.** Do it deliberately: bump
//! [`KEY_SCHEMA`], update the tables below, and re-pin `testdata/keys/solver-golden.toml` (the
//! `golden_keys` test prints the new values).
//!
//! # The formula
//!
//! For vertex `v` and output `o`:
//!
//! ```text
//! key(v, o) = sha256( "dray/cachekey/v1" ‖ 0x00
//!                     ‖ text(cm(v).digest) ‖ 0x00 ‖ le32(o)
//!                     ‖ for each input i of v, in order:  0x00 ‖ dep_i )
//! dep_i = "k:" ‖ text(key(input_i)) ‖ ":" ‖ selector_i          (DepKey::Definition)
//!       = "c:" ‖ text(contenthash(result(input_i), selectors_i)) (DepKey::Content)
//! ```
//!
//! `text(d)` is the `sha256:<64 hex>` spelling of a digest. `cm(v).digest` is the sha256 of the
//! compact JSON of the op's *cache map object* with keys sorted at every level (the same
//! canonical JSON as `dray_llb::encoding`), built per op kind as follows.
//!
//! # What goes into `cm.digest`
//!
//! | op | cache map object | left out (and why) |
//! |---|---|---|
//! | source `scratch://` | `{"op":"source","id":"scratch://"}` | — |
//! | source `docker-image://` | `{"op":"source","scheme":"docker-image","manifest":<resolved manifest digest>,"platform"}` | the tag and registry name once pinned: the manifest digest *is* the content |
//! | source `oci-layout://` | `{"op":"source","scheme":"oci-layout","manifest":<resolved digest>,"platform"}` | the layout path and ref name |
//! | source `local://<name>` | `{"op":"source","id","attrs","nonce":<per-build random>}` | everything stable: a local source never matches across builds; consumers key on content (`c:` deps) |
//! | exec | `{"op":"exec","meta":{"args","cwd","env","hostname","user"},"mounts":[{"dest","input","kind","output","readonly"}],"network","security","platform"}` | `meta.proxy_env`, and proxy variables in `env` (`HTTP_PROXY`, `https_proxy`, …: they change how, not what, is fetched); mount `selector`s (they go into `selector_i`); OpMetadata |
//! | file | `{"op":"file","actions":[…every FileStep field…],"platform"}` with each copy's `src` reduced to its base name | the full copy source paths: the content selector of the source input covers them |
//! | merge | `{"op":"merge","inputs":<n>,"platform"}` | — |
//!
//! With `--no-cache` (the solver's flag, or `ignore_cache` in the vertex's metadata) the object
//! also gets `"nonce":<random>`: the result is saved but never matched by a later build.
//!
//! # Which dependency kind each input uses
//!
//! | consumer | input | dep | selector(s) |
//! |---|---|---|---|
//! | exec | any mount's input | `Definition` | the mount selectors of that input, joined with `,` (empty if none) |
//! | file | an input that a step edits (`FileStep::input`) | `Definition` | empty |
//! | file | an input only read by copies (`secondary_input`) | `Content` | every copy's full `src` reading it, in action order |
//! | merge | every input | `Definition` | empty |
//! | any | a `local://` source (e.g. `RUN --mount=type=bind` of the context) | `Content` | the `Definition` selector(s), or `/` |
//!
//! # What goes into a content hash
//!
//! `contenthash(result, selectors)` is the sha256 over, for each selector in order,
//! `path ‖ 0x00 ‖ text(d) ‖ 0x00`, where `d` is `dray_fsutil::contenthash::checksum` of the
//! copy's source path (with its `follow_symlinks`, `allow_wildcard` and include/exclude
//! patterns) in the input's filesystem. That digest follows BuildKit's rules and is documented
//! (schema `v1`) in `dray_fsutil::contenthash`: a file's header (type, mode bits, size, link
//! target, device numbers, selected xattrs) plus its bytes, **never its mtime**; a directory's
//! sorted entries with their names; a wildcard's matches with their paths. uid and gid are
//! hashed for snapshot chains but not for the build context (whose owners COPY resets), and
//! `.dockerignore`d paths do not exist. File bytes are memoized in the store per file stamp,
//! so an unchanged context is hashed without reading a byte. A missing source path fails the
//! consuming step.
//!
//! # The stored preimage
//!
//! [`Preimage`] is saved as JSON beside every cache record ([`dray_cache::Store::save`]) so that
//! `cache inspect` and `build --explain-cache` can show *why* a step missed. It holds every part
//! of the formula, and [`Preimage::key`] recomputes the key from it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use dray_llb::{Digest, Hasher};

/// The key schema version: the first bytes of every key preimage.
pub const KEY_SCHEMA: &str = "dray/cachekey/v1";

/// How an op is cached: its own digest and one dependency kind per input (BuildKit's
/// `CacheMap`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CacheMap {
    /// The cache map object (see the module table); its canonical digest is `cm.digest`.
    pub(crate) object: Value,
    /// One entry per node input, in order.
    pub(crate) deps: Vec<DepKey>,
}

/// How one input contributes to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DepKey {
    /// The input's own cache key, plus a path selector.
    Definition {
        /// The selector (empty for none).
        selector: String,
    },
    /// A content hash of the input's result at these paths.
    Content {
        /// What each reading `COPY` selects (absolute paths, possibly wildcards, and options).
        selectors: Vec<crate::fs::contenthash::ContentSelector>,
    },
}

/// A dependency with its value filled in: what actually goes into the formula.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResolvedDep {
    /// `"k:" ‖ key ‖ ":" ‖ selector`.
    Key {
        /// The input's key.
        key: Digest,
        /// The selector.
        selector: String,
    },
    /// `"c:" ‖ digest`.
    Content {
        /// The content hash.
        digest: Digest,
        /// The selectors it covers (informational: already inside `digest`).
        selectors: Vec<String>,
    },
}

impl CacheMap {
    /// `cm.digest`: the sha256 of the canonical JSON of [`CacheMap::object`].
    pub(crate) fn digest(&self) -> Digest {
        Digest::of(canonical_json(&self.object))
    }

    /// Salts the object with `nonce` (`--no-cache`), so its key never matches again.
    pub(crate) fn salt(&mut self, nonce: &str) {
        if let Value::Object(map) = &mut self.object {
            map.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
        }
    }
}

/// The key formula (see the module docs).
pub fn cache_key(cm_digest: &Digest, output: u32, deps: &[ResolvedDep]) -> Digest {
    let mut h = Hasher::new();
    h.update(KEY_SCHEMA.as_bytes());
    h.update(b"\0");
    h.update(cm_digest.to_string().as_bytes());
    h.update(b"\0");
    h.update(&output.to_le_bytes());
    for dep in deps {
        h.update(b"\0");
        match dep {
            ResolvedDep::Key { key, selector } => {
                h.update(b"k:");
                h.update(key.to_string().as_bytes());
                h.update(b":");
                h.update(selector.as_bytes());
            }
            ResolvedDep::Content { digest, .. } => {
                h.update(b"c:");
                h.update(digest.to_string().as_bytes());
            }
        }
    }
    h.finish()
}

/// Everything that went into one key, stored as JSON with the cache record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preimage {
    /// [`KEY_SCHEMA`].
    pub schema: String,
    /// The vertex (node digest). Informational: not part of the key.
    pub vertex: Digest,
    /// The progress name. Informational: used to find the previous preimage of "the same
    /// step" when explaining a miss.
    pub name: String,
    /// The cache map object.
    pub op: Value,
    /// Its digest.
    pub cm_digest: Digest,
    /// The output index.
    pub output: u32,
    /// The resolved dependencies, one per input.
    pub deps: Vec<ResolvedDep>,
    /// **Not part of the key**: the result's snapshot chain (root first) when it does not follow
    /// the top snapshot's parent links, i.e. for a merge (`COPY --link`) or a step on top of
    /// one. Lookups use it instead of the parent links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_chain: Option<Vec<String>>,
}

impl Preimage {
    /// Recomputes the key from the stored parts (the object is re-hashed, so an edited
    /// preimage does not reproduce the key).
    pub fn key(&self) -> Digest {
        debug_assert_eq!(self.schema, KEY_SCHEMA);
        let cm = Digest::of(canonical_json(&self.op));
        cache_key(&cm, self.output, &self.deps)
    }

    /// The JSON stored with the cache record.
    pub fn to_json(&self) -> String {
        // Cannot fail: string keys, no floats, no fallible Serialize impls.
        serde_json::to_string(self).expect("a preimage always serializes")
    }
}

/// Why `now` has another key than `earlier` (for `build --explain-cache`): one line per
/// difference, naming the op field (`op.meta.args`) or the input. Empty when the keys match.
pub fn explain(earlier: &Preimage, now: &Preimage) -> Vec<String> {
    let mut out = Vec::new();
    if earlier.schema != now.schema {
        out.push(format!("key schema {} -> {}", earlier.schema, now.schema));
    }
    diff_json("op", &earlier.op, &now.op, &mut out);
    if earlier.output != now.output {
        out.push(format!("output {} -> {}", earlier.output, now.output));
    }
    if earlier.deps.len() != now.deps.len() {
        out.push(format!(
            "{} inputs -> {}",
            earlier.deps.len(),
            now.deps.len()
        ));
    }
    for (i, (a, b)) in earlier.deps.iter().zip(&now.deps).enumerate() {
        match (a, b) {
            (
                ResolvedDep::Key {
                    key: ka,
                    selector: sa,
                },
                ResolvedDep::Key {
                    key: kb,
                    selector: sb,
                },
            ) => {
                if ka != kb {
                    out.push(format!("input {i}: its cache key changed ({ka} -> {kb})"));
                }
                if sa != sb {
                    out.push(format!("input {i}: selector {sa:?} -> {sb:?}"));
                }
            }
            (
                ResolvedDep::Content {
                    digest: da,
                    selectors: sa,
                },
                ResolvedDep::Content {
                    digest: db,
                    selectors: sb,
                },
            ) => {
                if sa != sb {
                    out.push(format!("input {i}: copied paths {sa:?} -> {sb:?}"));
                } else if da != db {
                    out.push(format!(
                        "input {i}: the content of {} changed",
                        sb.join(", ")
                    ));
                }
            }
            _ => out.push(format!("input {i}: keyed by definition <-> by content")),
        }
    }
    out
}

fn diff_json(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        _ if a == b => {}
        (Value::Object(ma), Value::Object(mb)) => {
            let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let (va, vb) = (ma.get(k).unwrap_or(&null), mb.get(k).unwrap_or(&null));
                diff_json(&format!("{path}.{k}"), va, vb, out);
            }
        }
        _ => out.push(format!("{path}: {a} -> {b}")),
    }
}

/// Compact JSON with object keys sorted at every level, whatever serde_json's map type is.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = Map::new();
                for (k, v) in entries {
                    out.insert(k.clone(), sorted(v));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_distinguishes_every_part() {
        let cm = Digest::of("cm");
        let k = Digest::of("k");
        let base = cache_key(
            &cm,
            0,
            &[ResolvedDep::Key {
                key: k,
                selector: String::new(),
            }],
        );
        let variants = [
            cache_key(&Digest::of("cm2"), 0, &[]),
            cache_key(&cm, 0, &[]),
            cache_key(
                &cm,
                1,
                &[ResolvedDep::Key {
                    key: k,
                    selector: String::new(),
                }],
            ),
            cache_key(
                &cm,
                0,
                &[ResolvedDep::Key {
                    key: k,
                    selector: "/x".into(),
                }],
            ),
            cache_key(
                &cm,
                0,
                &[ResolvedDep::Content {
                    digest: k,
                    selectors: vec![],
                }],
            ),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
        // The informational selectors of a content dep are not part of the key.
        assert_eq!(
            cache_key(
                &cm,
                0,
                &[ResolvedDep::Content {
                    digest: k,
                    selectors: vec!["/a".into()]
                }]
            ),
            cache_key(
                &cm,
                0,
                &[ResolvedDep::Content {
                    digest: k,
                    selectors: vec![]
                }]
            )
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":{"z":1,"a":2},"a":[{"y":0,"x":1}]}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":[{"x":1,"y":0}],"b":{"a":2,"z":1}}"#
        );
    }

    #[test]
    fn explain_names_what_changed() {
        let pre = |args: &str, content: &str, key: &str| Preimage {
            schema: KEY_SCHEMA.into(),
            vertex: Digest::of("v"),
            name: "RUN".into(),
            op: serde_json::json!({"op": "exec", "meta": {"args": [args]}}),
            cm_digest: Digest::of("unused"),
            output: 0,
            deps: vec![
                ResolvedDep::Key {
                    key: Digest::of(key),
                    selector: String::new(),
                },
                ResolvedDep::Content {
                    digest: Digest::of(content),
                    selectors: vec!["/a.txt".into()],
                },
            ],
            result_chain: None,
        };
        let a = pre("make", "c1", "k");
        assert!(explain(&a, &a).is_empty());
        let b = pre("make all", "c2", "k");
        let why = explain(&a, &b);
        assert_eq!(why.len(), 2, "{why:?}");
        assert_eq!(why[0], r#"op.meta.args: ["make"] -> ["make all"]"#);
        assert_eq!(why[1], "input 1: the content of /a.txt changed");
        assert!(explain(&a, &pre("make", "c1", "k2"))[0].starts_with("input 0: its cache key"));
    }

    #[test]
    fn salting_changes_the_digest() {
        let mut cm = CacheMap {
            object: serde_json::json!({"op": "merge", "inputs": 2}),
            deps: vec![],
        };
        let before = cm.digest();
        cm.salt("n1");
        assert_ne!(cm.digest(), before);
    }
}
