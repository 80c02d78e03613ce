//! Shared helpers for the converter tests: fixture loading, the test image store, graph
//! queries.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dray_frontend::convert::{Conversion, ConvertOptions, ResolvedImage, convert_source};
use dray_frontend::stages::Platform;
use dray_llb::{Definition, Digest, ExecOp, FileOp, Node, Op};

/// `testdata/convert`.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/convert")
}

/// The images under `testdata/convert/_images`, by normalized reference.
pub(crate) fn images() -> BTreeMap<String, ResolvedImage> {
    let mut out = BTreeMap::new();
    let dir = root().join("_images");
    for entry in std::fs::read_dir(&dir).expect("the test images") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let reference = v["reference"].as_str().unwrap().to_owned();
        let digest: Digest = v["manifest_digest"].as_str().unwrap().parse().unwrap();
        let config = serde_json::from_value(v["config"].clone()).unwrap();
        out.insert(
            reference,
            ResolvedImage {
                manifest_digest: digest,
                config,
            },
        );
    }
    out
}

/// linux/amd64 for both build and target, so fixtures do not depend on the host.
pub(crate) fn base_options() -> ConvertOptions {
    let mut opts = ConvertOptions::default();
    let amd64 = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: String::new(),
    };
    opts.resolve.target_platform = amd64.clone();
    opts.resolve.build_platform = amd64;
    opts
}

/// The options of a case: `options.json` (`target`, `build_args`, `labels`, `dockerignore`,
/// `no_cache`) over [`base_options`].
pub(crate) fn case_options(case: &str) -> ConvertOptions {
    let mut opts = base_options();
    let path = root().join(case).join("options.json");
    if let Ok(text) = std::fs::read_to_string(path) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(t) = v["target"].as_str() {
            opts.resolve.target = Some(t.to_owned());
        }
        let map = |key: &str| -> BTreeMap<String, String> {
            v[key]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        opts.resolve.build_args = map("build_args");
        opts.labels = map("labels");
        if let Some(d) = v["dockerignore"].as_array() {
            opts.dockerignore = d.iter().map(|p| p.as_str().unwrap().to_owned()).collect();
        }
        opts.no_cache = v["no_cache"].as_bool().unwrap_or(false);
    }
    opts
}

/// Converts `testdata/convert/<case>/Dockerfile` with the test images.
pub(crate) fn convert_case(case: &str) -> Conversion {
    let src = std::fs::read(root().join(case).join("Dockerfile")).unwrap();
    match convert_source(&src, &case_options(case), &images()) {
        Ok(c) => c,
        Err(e) => panic!("{case}: {e} at {:?}", e.span()),
    }
}

/// Every progress name in the definition, in node order.
pub(crate) fn names(def: &Definition) -> Vec<String> {
    def.nodes
        .iter()
        .filter_map(|n| def.metadata.get(&n.digest()))
        .filter_map(|m| m.custom_name().map(str::to_owned))
        .collect()
}

/// The node whose progress name is exactly `name`.
pub(crate) fn node_named<'a>(def: &'a Definition, name: &str) -> &'a Node {
    def.nodes
        .iter()
        .find(|n| def.metadata.get(&n.digest()).and_then(|m| m.custom_name()) == Some(name))
        .unwrap_or_else(|| panic!("no node named {name:?}; names: {:#?}", names(def)))
}

/// The node of kind `kind` (`file`, `exec`, …) whose progress name is exactly `name`.
pub(crate) fn node_of_kind<'a>(def: &'a Definition, name: &str, kind: &str) -> &'a Node {
    def.nodes
        .iter()
        .find(|n| {
            n.op.kind() == kind
                && def.metadata.get(&n.digest()).and_then(|m| m.custom_name()) == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} node named {name:?}; names: {:#?}", names(def)))
}

/// The exec op of a node.
pub(crate) fn exec(node: &Node) -> &ExecOp {
    match &node.op {
        Op::Exec(e) => e,
        other => panic!("not an exec: {other:?}"),
    }
}

/// The file op of a node.
pub(crate) fn file(node: &Node) -> &FileOp {
    match &node.op {
        Op::File(f) => f,
        other => panic!("not a file op: {other:?}"),
    }
}

/// The node with digest `d`.
pub(crate) fn node<'a>(def: &'a Definition, d: &Digest) -> &'a Node {
    def.nodes.iter().find(|n| n.digest() == *d).unwrap()
}
