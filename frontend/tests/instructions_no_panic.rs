//! Property test: arbitrary Dockerfile-shaped input never panics the instruction layer or the
//! stage graph; it parses or fails with an error whose span lies inside the source.

use dray_frontend::instructions;
use dray_frontend::parser;
use dray_frontend::stages::{self, ResolveOptions};
use proptest::prelude::*;

fn template() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "FROM alpine AS b",
        "FROM a",
        "FROM $A AS c",
        "FROM --platform=$P b",
        "FROM b AS a",
        "FROM --platform=$BUILDPLATFORM scratch",
        "RUN echo",
        "RUN --mount=type=cache,target=/c true",
        "RUN --mount=from=b,target=/b x",
        "RUN --mount=type=$T,target=/x,uid=1 y",
        "COPY --from=a x y",
        "COPY --from=b x y",
        "COPY --from=1 x y",
        "COPY --from=9 x y",
        "COPY --chmod=$M a b",
        "ARG M=u+x",
        "ARG T=tmpfs",
        "ARG P=linux/arm64",
        "ARG B=${A:-x}",
        "ARG A",
        "ENV X=$A Y=$X",
        "EXPOSE 80 1-2/udp",
        "EXPOSE $A",
        "STOPSIGNAL $A",
        "WORKDIR ${B:?no}",
        "WORKDIR /$A",
        "USER a:b",
        "HEALTHCHECK --interval=1s CMD true",
        "ONBUILD RUN x",
        "LABEL a=b",
        "VOLUME /v",
        "SHELL [\"sh\"]",
    ])
    .prop_map(str::to_string)
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![4 => template(), 1 => random_line()]
}

fn random_line() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(vec![
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ARG",
        "ENV",
        "LABEL",
        "EXPOSE",
        "USER",
        "WORKDIR",
        "VOLUME",
        "CMD",
        "ENTRYPOINT",
        "SHELL",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "ONBUILD",
        "MAINTAINER",
        "FOO",
    ]);
    let word = prop::sample::select(vec![
        "alpine",
        "AS",
        "a",
        "b",
        "0",
        "1",
        "9",
        "$A",
        "${A:-x}",
        "${B:?no}",
        "x=y",
        "A=$A",
        "--from=a",
        "--from=1",
        "--mount=type=cache,target=/c",
        "--mount=from=b,target=/b",
        "--mount=type=$T",
        "--chmod=0755",
        "--chmod=u+x",
        "--chmod=$M",
        "--link",
        "--platform=$P",
        "--platform=linux/arm64",
        "--interval=1s",
        "--retries=2",
        "80/tcp",
        "1-2",
        "CMD",
        "NONE",
        "[\"a\"]",
        "<<EOF",
        "\"q w\"",
        "SIGTERM",
        "RUN",
        "FROM",
        "ONBUILD",
    ]);
    (keyword, prop::collection::vec(word, 0..5)).prop_map(|(k, w)| format!("{k} {}", w.join(" ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn never_panics(lines in prop::collection::vec(line(), 1..8), target in prop::option::of("[ab]")) {
        let src = format!("ARG A=1\nFROM alpine AS a\n{}\n", lines.join("\n"));
        let Ok(ast) = parser::parse(src.as_bytes()) else { return Ok(()) };
        match instructions::parse(&ast) {
            Err(e) => prop_assert!(e.span().end <= src.len()),
            Ok(df) => {
                let opts = ResolveOptions { target, ..ResolveOptions::default() };
                if let Err(e) = stages::resolve(&df, &opts) {
                    prop_assert!(e.span().end <= src.len(), "{e}");
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
