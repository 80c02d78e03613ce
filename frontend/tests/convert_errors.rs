//! Converter errors: each names the problem and points at the instruction (or flag) that
//! caused it.

mod convert_support;

use dray_frontend::convert::{
    self, ConvertOptions, Error as ConvertError, ImageResolver, ResolveError, ResolvedImage,
};
use dray_llb::{ImageRef, Platform};

use convert_support::{base_options, images};

/// Converts `src` with the test images; the error and the source text its span covers.
fn fail_with(src: &str, resolver: &dyn ImageResolver) -> (dray_frontend::Error, String) {
    let err = convert::convert_source(src.as_bytes(), &base_options(), resolver)
        .err()
        .unwrap_or_else(|| panic!("{src:?} converted"));
    let span = err.span();
    let text = src.get(span.start..span.end).unwrap_or_default().to_owned();
    (err, text)
}

fn fail(src: &str) -> (dray_frontend::Error, String) {
    fail_with(src, &images())
}

#[test]
fn unknown_base_image() {
    let src = "FROM alpine:3.20 AS ok\nRUN true\nFROM nosuch AS app\nCOPY --from=ok / /\n";
    let (err, at) = fail(src);
    assert_eq!(
        err.to_string(),
        "failed to resolve source metadata for docker.io/library/nosuch:latest: not found in the local image store (pulling from registries is not supported yet)"
    );
    assert!(matches!(
        err,
        dray_frontend::Error::Convert(ConvertError::ImageNotFound { .. })
    ));
    assert_eq!(at, "FROM nosuch AS app");
}

#[test]
fn unreachable_stages_need_no_image() {
    let src = "FROM nosuch AS unused\nRUN x\nFROM scratch\nCOPY a /a\n";
    let out = convert::convert_source(src.as_bytes(), &base_options(), &images()).unwrap();
    assert_eq!(out.definition.nodes.len(), 3);
}

#[test]
fn copy_from_unknown_stage_index() {
    let (err, at) = fail("FROM scratch\nCOPY --from=3 /a /a\n");
    assert_eq!(err.to_string(), "invalid stage index 3");
    assert_eq!(at, "--from=3");
}

#[test]
fn copy_from_unknown_image() {
    let (err, at) = fail("FROM scratch\nCOPY --from=nosuch:2 /a /a\n");
    assert_eq!(
        err.to_string(),
        "failed to resolve source metadata for docker.io/library/nosuch:2: not found in the local image store (pulling from registries is not supported yet)"
    );
    assert!(at.contains("--from=nosuch:2"), "{at:?}");
}

#[test]
fn copy_of_a_url() {
    let (err, at) = fail("FROM scratch\nCOPY https://example.com/a /a\n");
    assert_eq!(err.to_string(), "source can't be a URL for COPY");
    assert_eq!(at, "COPY https://example.com/a /a");
}

#[test]
fn add_checksum_rules() {
    let (err, at) = fail("FROM scratch\nADD --checksum=sha256:00 local.txt /x\n");
    assert_eq!(err.to_string(), "checksum requires HTTP(S) or Git sources");
    assert!(at.starts_with("ADD --checksum"));
    let (err, _) = fail("FROM scratch\nADD --checksum=md5:1 https://example.com/a /a\n");
    assert!(matches!(
        err,
        dray_frontend::Error::Convert(ConvertError::InvalidChecksum { .. })
    ));
    let (err, _) = fail(
        "FROM scratch\nADD --checksum=sha256:00 https://a.example/x https://b.example/y /d/\n",
    );
    assert_eq!(
        err.to_string(),
        "checksum can't be specified for multiple sources"
    );
}

#[test]
fn add_of_git_sources_is_not_supported() {
    let (err, _) = fail("FROM scratch\nADD https://github.com/moby/buildkit.git#v0.13 /src\n");
    assert!(matches!(
        err,
        dray_frontend::Error::Convert(ConvertError::GitSource { .. })
    ));
}

#[test]
fn copy_of_a_git_url() {
    let (err, _) = fail("FROM scratch\nCOPY https://github.com/moby/buildkit.git /src\n");
    assert_eq!(err.to_string(), "source can't be a git ref for COPY");
}

#[test]
fn mount_target_root() {
    let (err, at) = fail("FROM alpine:3.20\nRUN --mount=type=cache,target=/ true\n");
    assert_eq!(err.to_string(), "invalid mount target \"/\"");
    assert_eq!(at, "--mount=type=cache,target=/");
}

#[test]
fn secrets_as_env_are_refused_not_dropped() {
    let (err, at) = fail("FROM alpine:3.20\nRUN --mount=type=secret,id=tok,env=TOKEN true\n");
    assert_eq!(
        err.to_string(),
        "secret mounts exposed as environment variables (env=) are not supported yet"
    );
    assert_eq!(at, "--mount=type=secret,id=tok,env=TOKEN");
}

#[test]
fn invalid_source_date_epoch() {
    let mut opts = base_options();
    opts.resolve
        .build_args
        .insert("SOURCE_DATE_EPOCH".into(), "yesterday".into());
    let err = convert::convert_source(b"FROM scratch\n", &opts, &images()).unwrap_err();
    assert_eq!(err.to_string(), "invalid SOURCE_DATE_EPOCH: \"yesterday\"");
}

struct Broken;

impl ImageResolver for Broken {
    fn resolve(&self, _: &ImageRef, _: &Platform) -> Result<Option<ResolvedImage>, ResolveError> {
        Err("the image store is locked".into())
    }
}

#[test]
fn resolver_failures_keep_their_cause() {
    let (err, at) = fail_with("FROM alpine:3.20\n", &Broken);
    assert_eq!(
        err.to_string(),
        "failed to resolve source metadata for docker.io/library/alpine:3.20"
    );
    // `dray_frontend::Error` is transparent: its source is the resolver's error.
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "the image store is locked");
    assert_eq!(at, "FROM alpine:3.20");
}

#[test]
fn broken_image_trigger() {
    let mut imgs = images();
    let mut base = imgs["docker.io/library/alpine:3.20"].clone();
    base.config.config.on_build = Some(vec!["NOSUCH thing".into()]);
    imgs.insert("docker.io/library/alpine:3.20".into(), base);
    let (err, at) = fail_with("FROM alpine:3.20\nRUN true\n", &imgs);
    assert!(
        err.to_string()
            .starts_with("invalid ONBUILD trigger \"NOSUCH thing\""),
        "{err}"
    );
    assert_eq!(at, "FROM alpine:3.20");
}

#[test]
fn stage_onbuild_triggers_are_named() {
    let src = "FROM alpine:3.20 AS base\nONBUILD RUN echo hi\nFROM base\nRUN echo child\n";
    let out = convert::convert_source(
        src.as_bytes(),
        &ConvertOptions { ..base_options() },
        &images(),
    )
    .unwrap();
    let names = convert_support::names(&out.definition);
    assert!(
        names.contains(&"[stage-1 1/2] ONBUILD RUN echo hi".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"[stage-1 2/2] RUN echo child".to_owned()),
        "{names:?}"
    );
    // Triggers do not carry over into the image that ran them.
    assert_eq!(out.image.config.on_build, None);
}
