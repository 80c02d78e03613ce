//! Stage resolution over real Dockerfile text: names, indices, `--target`, cycles and
//! references between stages.

use std::collections::BTreeMap;

use dray_frontend::instructions;
use dray_frontend::parser;
use dray_frontend::stages::{self, Base, Error, Platform, ResolveOptions, StageGraph};

fn opts(target: Option<&str>) -> ResolveOptions {
    ResolveOptions {
        build_args: BTreeMap::new(),
        target: target.map(str::to_string),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/arm64").unwrap(),
    }
}

fn resolve(src: &str, target: Option<&str>) -> Result<StageGraph, Error> {
    let ast = parser::parse(src.as_bytes()).expect("parses");
    let df = instructions::parse(&ast).expect("valid instructions");
    stages::resolve(&df, &opts(target))
}

fn indices(g: &StageGraph) -> Vec<usize> {
    g.stages.iter().map(|s| s.index).collect()
}

const MULTI: &str = "\
FROM alpine AS base
RUN echo base

FROM base AS Build
RUN make

FROM golang AS unused
RUN true

FROM build AS test
RUN make test

FROM scratch
COPY --from=build /out /out
COPY --from=0 /etc/os-release /
";

#[test]
fn default_target_is_the_last_stage_and_unreachable_stages_are_dropped() {
    let g = resolve(MULTI, None).unwrap();
    assert_eq!(g.target, 4);
    assert_eq!(indices(&g), [0, 1, 4]);
    let last = g.target_stage().unwrap();
    assert_eq!(last.base, Base::Scratch);
    assert_eq!(last.deps, [0, 1]);
    assert_eq!(g.stage(1).unwrap().base, Base::Stage { index: 0 });
    assert_eq!(
        g.stage(0).unwrap().base,
        Base::Image {
            reference: "alpine".into()
        }
    );
}

#[test]
fn target_picks_a_stage_case_insensitively() {
    let g = resolve(MULTI, Some("TEST")).unwrap();
    assert_eq!(g.target, 3);
    assert_eq!(indices(&g), [0, 1, 3]);
    let g = resolve(MULTI, Some("unused")).unwrap();
    assert_eq!(indices(&g), [2]);
    let err = resolve(MULTI, Some("prod")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "target stage \"prod\" could not be found (stages: base, build, unused, test)"
    );
}

#[test]
fn from_a_later_stage_name_is_an_image() {
    let g = resolve(
        "FROM later AS first\nFROM alpine AS later\nFROM first\n",
        None,
    )
    .unwrap();
    assert_eq!(
        g.stage(0).unwrap().base,
        Base::Image {
            reference: "later".into()
        }
    );
    assert_eq!(indices(&g), [0, 2]);
    let g = resolve("FROM self AS self\n", None).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "self".into()
        }
    );
}

#[test]
fn copy_from_an_unknown_name_is_an_image() {
    let g = resolve(
        "FROM alpine\nCOPY --from=nginx:latest /etc/nginx /etc/nginx\n",
        None,
    )
    .unwrap();
    assert_eq!(g.stages[0].image_sources, ["nginx:latest"]);
    assert!(g.stages[0].deps.is_empty());
}

#[test]
fn copy_from_index_must_exist() {
    let src = "FROM alpine\nRUN true\nFROM alpine\nCOPY --from=5 /a /b\n";
    let err = resolve(src, None).unwrap_err();
    assert_eq!(err.to_string(), "invalid stage index 5");
    let lc = dray_frontend::LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!((lc.line, lc.column), (4, 6));
    assert_eq!(
        resolve("FROM a\nCOPY --from=-1 /a /b\n", None)
            .unwrap_err()
            .to_string(),
        "invalid stage index -1"
    );
}

#[test]
fn copy_from_a_later_stage_is_an_error_when_reachable() {
    let src = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nRUN true\n";
    let err = resolve(src, Some("a")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    // Not reachable from the default target: no error.
    assert_eq!(indices(&resolve(src, None).unwrap()), [2 - 1]);
    let err = resolve(
        "FROM alpine AS a\nCOPY --from=1 /x /x\nFROM alpine\n",
        Some("a"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::CopyFromLaterStage { .. }));
}

#[test]
fn cycles_and_self_references_are_errors() {
    let err = resolve("FROM alpine AS a\nCOPY --from=a /x /y\n", None).unwrap_err();
    assert_eq!(err.to_string(), "circular dependency detected on stage: a");
    let src = "FROM alpine AS a\nCOPY --from=b /x /y\nFROM alpine AS b\nCOPY --from=a /x /y\n";
    let err = resolve(src, None).unwrap_err();
    assert_eq!(err.to_string(), "circular dependency detected on stage: a");
    let lc = dray_frontend::LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!(
        lc.line, 4,
        "the span is the reference that closes the cycle"
    );
    let err = resolve("FROM alpine AS a\nRUN --mount=from=b,target=/x true\nFROM alpine AS b\nCOPY --from=0 / /\n", None)
        .unwrap_err();
    assert!(matches!(err, Error::CircularDependency { .. }), "{err}");
}

#[test]
fn run_mount_from_uses_stage_names_only() {
    let src = "FROM alpine AS tools\nRUN true\nFROM alpine\nRUN --mount=from=tools,target=/t --mount=from=0,target=/z true\n";
    let g = resolve(src, None).unwrap();
    assert_eq!(g.target_stage().unwrap().deps, [0]);
    assert_eq!(
        g.target_stage().unwrap().image_sources,
        ["0"],
        "a number is an image name for mounts"
    );
    let err = resolve(
        "FROM alpine AS a\nRUN --mount=from=b,target=/b true\nFROM alpine AS b\n",
        Some("a"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot mount from stage \"b\" to \"/b\", stage needs to be defined before current command"
    );
}

#[test]
fn copy_from_with_a_variable_is_rejected() {
    let err = resolve(
        "FROM alpine AS a\nARG S=a\nFROM alpine\nCOPY --from=$S /x /y\n",
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::CopyFromVariable { .. }));
    assert!(
        err.to_string()
            .starts_with("variable expansion is not supported for --from")
    );
}

#[test]
fn a_file_without_stages_is_rejected() {
    let ast = parser::parse(b"ARG A=1\n").unwrap();
    let df = instructions::parse(&ast).unwrap();
    let err = stages::resolve(&df, &opts(None)).unwrap_err();
    assert_eq!(err.to_string(), "dockerfile contains no stages to build");
}

#[test]
fn duplicate_names_resolve_to_the_last_definition() {
    let g = resolve("FROM alpine AS x\nFROM busybox AS x\nFROM x\n", None).unwrap();
    assert_eq!(g.target_stage().unwrap().base, Base::Stage { index: 1 });
}

#[test]
fn stage_graph_serializes_to_json() {
    let g = resolve(MULTI, None).unwrap();
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["target"], 4);
    assert_eq!(json["stages"][1]["base"]["kind"], "stage");
    assert_eq!(json["stages"][1]["base"]["index"], 0);
    assert_eq!(json["stages"][0]["platform"]["architecture"], "amd64");
    assert_eq!(json["stages"][2]["commands"][0]["instruction"], "copy");
}

#[test]
fn hand_built_stage_indices_do_not_panic() {
    let ast = parser::parse(b"FROM alpine AS a\nFROM a\nCOPY --from=0 / /\n").unwrap();
    let mut df = instructions::parse(&ast).unwrap();
    df.stages[0].index = 7;
    df.stages[1].index = 3;
    let g = stages::resolve(&df, &opts(None)).unwrap();
    assert_eq!(indices(&g), [0, 1]);
    assert_eq!(g.target_stage().unwrap().base, Base::Stage { index: 0 });
}

#[test]
fn buildkit_and_epoch_args_are_never_reported_unused() {
    let ast = parser::parse(b"FROM alpine\n").unwrap();
    let df = instructions::parse(&ast).unwrap();
    let mut o = opts(None);
    for k in [
        "BUILDKIT_INLINE_CACHE",
        "SOURCE_DATE_EPOCH",
        "TARGETARCH",
        "FOO",
    ] {
        o.build_args.insert(k.to_string(), "1".to_string());
    }
    let g = stages::resolve(&df, &o).unwrap();
    assert_eq!(g.unused_build_args, ["FOO"]);
}

#[test]
fn onbuild_triggers_of_a_base_stage_run_first_in_the_child() {
    let src = "\
FROM alpine AS tools
FROM alpine AS parent
ARG V=p
ONBUILD WORKDIR /$V
ONBUILD COPY --from=tools /bin/x /bin/x
RUN true
FROM parent AS child
RUN child
FROM child
RUN grandchild
";
    let g = resolve(src, None).unwrap();
    assert_eq!(indices(&g), [0, 1, 2, 3]);
    let child = g.stage(2).unwrap();
    assert_eq!(child.onbuild_triggers, 2);
    let names: Vec<_> = child.commands.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["WORKDIR", "COPY", "RUN"]);
    let dray_frontend::instructions::Command::Workdir(w) = &child.commands[0] else {
        panic!()
    };
    assert_eq!(w.path.value, "/p", "triggers expand in the child's scope");
    assert_eq!(
        child.deps,
        [0, 1],
        "a trigger's COPY --from adds a dependency"
    );
    let grandchild = g.stage(3).unwrap();
    assert_eq!(grandchild.onbuild_triggers, 0, "triggers do not carry over");
    assert_eq!(grandchild.commands.len(), 1);
    // The parent itself does not run its own triggers.
    assert_eq!(g.stage(1).unwrap().commands.len(), 4);
}

#[test]
fn onbuild_trigger_errors_point_at_the_child_from_and_only_when_built() {
    let src =
        "FROM alpine AS parent\nONBUILD COPY --from=9 a b\nFROM parent AS child\nFROM alpine\n";
    assert!(resolve(src, None).is_ok(), "the child is not built");
    let err = resolve(src, Some("child")).unwrap_err();
    assert_eq!(err.to_string(), "invalid stage index 9");
    let lc = dray_frontend::LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!(lc.line, 3);
}

#[test]
fn unknown_targets_get_a_suggestion() {
    let err = resolve(MULTI, Some("tset")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "target stage \"tset\" could not be found (did you mean test?) (stages: base, build, unused, test)"
    );
}

#[test]
fn empty_from_values_mean_no_source() {
    let g = resolve(
        "FROM alpine\nCOPY --from= a b\nRUN --mount=from=,target=/x true\n",
        None,
    )
    .unwrap();
    assert!(g.stages[0].image_sources.is_empty());
    assert!(g.stages[0].deps.is_empty());
}
