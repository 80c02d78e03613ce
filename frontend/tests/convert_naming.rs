//! Progress names and platforms: BuildKit's `prefixCommand` rules on small builds.

mod convert_support;

use dray_frontend::convert::convert_source;
use dray_llb::Op;

use convert_support::{base_options, images, names};

fn step_names(src: &str) -> Vec<String> {
    let out = convert_source(src.as_bytes(), &base_options(), &images()).unwrap();
    names(&out.definition)
        .into_iter()
        .filter(|n| !n.starts_with("[internal]"))
        .collect()
}

#[test]
fn a_single_stage_has_no_stage_name() {
    assert_eq!(
        step_names("FROM scratch\nCOPY a /a\nRUN true\n"),
        ["[1/2] COPY a /a", "[2/2] RUN true"]
    );
}

#[test]
fn extra_sources_count_as_stages() {
    // BuildKit registers every RUN mount source that is not a stage (a cache mount's is
    // `scratch`) and every `COPY --from=<image>` as a state of its own; with more than one
    // state, the stage is called `stage-0`.
    assert_eq!(
        step_names("FROM scratch\nRUN --mount=type=cache,target=/c true\n"),
        ["[stage-0 1/1] RUN --mount=type=cache,target=/c true"]
    );
    assert_eq!(
        step_names("FROM scratch\nCOPY --from=busybox:1.36 /bin/sh /sh\n"),
        [
            // The extra source has no steps to count, so no prefix.
            "FROM docker.io/library/busybox:1.36@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7",
            "[stage-0 1/1] COPY --from=busybox:1.36 /bin/sh /sh",
        ]
    );
}

#[test]
fn workdir_root_counts_but_makes_no_step() {
    assert_eq!(
        step_names("FROM scratch\nWORKDIR /\nCOPY a b\n"),
        ["[1/2] COPY a b"]
    );
}

#[test]
fn names_show_expanded_variables() {
    assert_eq!(
        step_names(
            "FROM scratch\nARG DIR=/srv\nWORKDIR $DIR/app\nCOPY --chown=${U:-app} x ${DIR}/\n"
        ),
        ["[1/2] WORKDIR /srv/app", "[2/2] COPY --chown=app x /srv/"]
    );
    // RUN keeps quotes and unset variables as written.
    assert_eq!(
        step_names("FROM scratch\nENV A=1\nRUN echo \"$A\" $UNSET\n"),
        ["[1/1] RUN echo \"1\" $UNSET"]
    );
}

#[test]
fn from_platform_reaches_every_op_and_the_config() {
    let src = "FROM --platform=linux/arm64 alpine:3.20\nRUN uname -m\n";
    let out = convert_source(src.as_bytes(), &base_options(), &images()).unwrap();
    assert_eq!(out.image.architecture, "arm64");
    for node in &out.definition.nodes {
        let p = node.platform.as_ref().expect("an explicit platform");
        assert_eq!(p.architecture, "arm64", "{:?}", node.op.kind());
    }
    let default = convert_source(
        b"FROM alpine:3.20\nRUN uname -m\n",
        &base_options(),
        &images(),
    )
    .unwrap();
    assert!(
        default
            .definition
            .nodes
            .iter()
            .all(|n| n.platform.is_none())
    );
    assert!(matches!(default.definition.nodes[1].op, Op::Exec(_)));
}

#[test]
fn relative_cache_targets_join_the_workdir_but_not_the_id() {
    let src = "FROM scratch\nWORKDIR /w\nRUN --mount=type=cache,target=./cache/ true\n";
    let out = convert_source(src.as_bytes(), &base_options(), &images()).unwrap();
    let run = out
        .definition
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            Op::Exec(e) => Some(e),
            _ => None,
        })
        .unwrap();
    assert_eq!(run.mounts[1].dest, "/w/cache");
    assert_eq!(
        run.mounts[1].kind,
        dray_llb::MountKind::Cache {
            id: "cache".into(),
            sharing: dray_llb::Sharing::Shared
        }
    );
}
