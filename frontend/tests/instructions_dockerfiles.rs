//! Typed instructions from real Dockerfile text (parser + instructions).

use dray_frontend::LineIndex;
use dray_frontend::instructions::{self, Command, Dockerfile, Error, Healthcheck, MountType};
use dray_frontend::parser;

fn parse(src: &str) -> Result<Dockerfile, Error> {
    let ast = parser::parse(src.as_bytes()).expect("the parser accepts the test input");
    instructions::parse(&ast)
}

/// The error and the 1-based (line, column) where its span starts.
fn error_at(src: &str) -> (String, usize, usize) {
    let err = parse(src).expect_err("the Dockerfile should be rejected");
    let lc = LineIndex::new(src.as_bytes()).line_column(err.span().start);
    (err.to_string(), lc.line, lc.column)
}

#[test]
fn a_complete_dockerfile_parses_into_typed_commands() {
    let src = r#"# syntax=docker/dockerfile:1
ARG BASE=alpine:3.20
FROM --platform=$BUILDPLATFORM $BASE AS Builder
ENV GOPATH=/go PATH="/go/bin:$PATH"
LABEL org.opencontainers.image.title="dray test" version=1
WORKDIR /src
COPY --chown=1000:1000 --chmod=0644 go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,source=.,target=/src \
    go build -o /out/app ./cmd/app
USER 1000:1000
EXPOSE 8080/tcp 9000-9010/udp
VOLUME ["/data", "/logs"]
HEALTHCHECK --interval=30s --retries=3 CMD wget -q -O- http://localhost:8080/
STOPSIGNAL SIGTERM
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
ONBUILD COPY . /app
MAINTAINER someone@example.com
ENTRYPOINT ["/out/app"]
CMD ["--help"]

FROM scratch
COPY --from=builder /out/app /app
"#;
    let df = parse(src).unwrap();
    assert_eq!(df.meta_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    let builder = &df.stages[0];
    assert_eq!(builder.name.as_deref(), Some("builder"));
    assert_eq!(builder.base, "$BASE");
    assert_eq!(builder.platform.as_deref(), Some("$BUILDPLATFORM"));
    let names: Vec<_> = builder.commands.iter().map(Command::name).collect();
    assert_eq!(
        names,
        [
            "ENV",
            "LABEL",
            "WORKDIR",
            "COPY",
            "RUN",
            "USER",
            "EXPOSE",
            "VOLUME",
            "HEALTHCHECK",
            "STOPSIGNAL",
            "SHELL",
            "ONBUILD",
            "MAINTAINER",
            "ENTRYPOINT",
            "CMD"
        ]
    );
    let Command::Run(run) = &builder.commands[4] else {
        panic!("not RUN")
    };
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[0].kind, MountType::Cache);
    assert_eq!(run.mounts[1].source.as_deref(), Some("."));
    assert_eq!(run.origin.start_line, 8);
    assert_eq!(run.origin.end_line, 10);
    let Command::Env(env) = &builder.commands[0] else {
        panic!("not ENV")
    };
    assert_eq!(env.env[1].value, "\"/go/bin:$PATH\"");
    let Command::Onbuild(onbuild) = &builder.commands[11] else {
        panic!("not ONBUILD")
    };
    assert_eq!(onbuild.expression, "COPY . /app");
    assert_eq!(onbuild.trigger, "COPY");
    let Command::Healthcheck(h) = &builder.commands[8] else {
        panic!("not HEALTHCHECK")
    };
    assert!(matches!(
        &h.health,
        Healthcheck::Cmd {
            retries: Some(3),
            ..
        }
    ));
}

#[test]
fn unknown_instruction_is_reported_at_its_keyword() {
    let (msg, line, col) = error_at("FROM alpine\n  FOO bar\n");
    assert_eq!(msg, "unknown instruction: FOO (did you mean from?)");
    assert_eq!((line, col), (2, 3));
}

#[test]
fn missing_from_is_an_error() {
    let (msg, line, _) = error_at("ARG A=1\nRUN echo $A\nFROM alpine\n");
    assert_eq!(msg, "no build stage in current context");
    assert_eq!(line, 2);
}

#[test]
fn flag_errors_point_at_the_flag() {
    let (msg, line, col) = error_at("FROM alpine\nCOPY --link --form=x a b\n");
    assert_eq!(msg, "unknown flag: form (did you mean from?)");
    assert_eq!((line, col), (2, 13));
    let (msg, line, col) =
        error_at("FROM alpine\nRUN --mount=type=cache,target=/c,sharing=all true\n");
    assert_eq!(msg, "unsupported sharing value \"all\"");
    assert_eq!((line, col), (2, 5));
    let (msg, ..) = error_at("FROM alpine\nCOPY --from=a --from=b x y\n");
    assert_eq!(msg, "duplicate flag specified: from");
    let (msg, ..) = error_at("FROM alpine\nRUN --network=bridge true\n");
    assert_eq!(msg, "unsupported network mode \"bridge\"");
}

#[test]
fn onbuild_misuse() {
    assert_eq!(
        error_at("FROM a\nONBUILD ONBUILD RUN x\n").0,
        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    let (msg, line, col) = error_at("FROM a\nONBUILD FROM b\n");
    assert_eq!(msg, "FROM isn't allowed as an ONBUILD trigger");
    assert_eq!((line, col), (2, 9));
    assert_eq!(
        error_at("FROM a\nonbuild maintainer me\n").0,
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    let df = parse("FROM a\nonbuild run echo ${X:-y}\n").unwrap();
    let Command::Onbuild(o) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert_eq!(
        o.expression, "run echo ${X:-y}",
        "the trigger keeps its text and is not expanded"
    );
}

#[test]
fn stage_names_are_validated() {
    let (msg, line, col) = error_at("FROM alpine AS 1build\n");
    assert_eq!(
        msg,
        "invalid name for build stage: \"1build\", name can't start with a number or contain symbols"
    );
    assert_eq!((line, col), (1, 16));
    assert_eq!(
        error_at("FROM alpine AS\n").0,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        error_at("FROM alpine foo bar\n").0,
        "FROM requires either one or three arguments"
    );
}

#[test]
fn copy_heredocs_and_destinations() {
    let df = parse("FROM a\nCOPY <<EOF <<-\"END\" /etc/\nhello $X\nEOF\n\tbye\nEND\n").unwrap();
    let Command::Copy(c) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert_eq!(c.files.contents.len(), 2);
    assert_eq!(c.files.contents[0].data, "hello $X\n");
    assert!(c.files.contents[0].expand);
    assert_eq!(c.files.contents[1].path, "END");
    assert_eq!(c.files.contents[1].data, "bye\n", "<<- strips leading tabs");
    assert!(!c.files.contents[1].expand);
    assert_eq!(c.files.dest.value, "/etc/");
    assert_eq!(
        error_at("FROM a\nADD onlyone\n").0,
        "ADD requires at least two arguments, but only one was provided. Destination could not be determined"
    );
}

#[test]
fn shell_requires_json_and_healthcheck_validates() {
    assert_eq!(
        error_at("FROM a\nSHELL /bin/sh -c\n").0,
        "SHELL requires the arguments to be in JSON form"
    );
    let (msg, line, col) = error_at("FROM a\nHEALTHCHECK --interval=5 CMD true\n");
    assert_eq!(msg, "invalid duration \"5\" for --interval");
    assert_eq!((line, col), (2, 13));
    assert_eq!(
        error_at("FROM a\nHEALTHCHECK --retries=-2 CMD true\n").0,
        "--retries cannot be negative (-2)"
    );
    assert_eq!(
        error_at("FROM a\nHEALTHCHECK --start-period=1ns CMD true\n").0,
        "interval \"start-period\" cannot be less than 1ms"
    );
    let df = parse("FROM a\nHEALTHCHECK NONE\n").unwrap();
    let Command::Healthcheck(h) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert_eq!(h.health, Healthcheck::None);
}

#[test]
fn arg_words_keep_quotes_until_expansion() {
    let df = parse("ARG a=\"x y\" b\nFROM s\nARG c='$a'\n").unwrap();
    assert_eq!(df.meta_args[0].args[0].default.as_deref(), Some("\"x y\""));
    assert_eq!(df.meta_args[0].args[1].default, None);
    let Command::Arg(arg) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert_eq!(arg.args[0].default.as_deref(), Some("'$a'"));
}

#[test]
fn typed_dockerfile_serializes_to_json() {
    let df = parse(
        "FROM a AS b\nRUN --mount=type=tmpfs,target=/t,size=1k true\nCOPY --chmod=u=rwx x /y\n",
    )
    .unwrap();
    let json = serde_json::to_value(&df).unwrap();
    assert_eq!(json["stages"][0]["name"], "b");
    assert_eq!(json["stages"][0]["commands"][0]["instruction"], "run");
    assert_eq!(json["stages"][0]["commands"][0]["mounts"][0]["size"], 1024);
    assert_eq!(json["stages"][0]["commands"][0]["origin"]["span"][0], 12);
}

#[test]
fn unknown_names_get_suggestions() {
    assert_eq!(
        error_at("FROM a\nRUNN true\n").0,
        "unknown instruction: RUNN (did you mean run?)"
    );
    assert_eq!(
        error_at("FROM a\nCOPY --chwon=1 a b\n").0,
        "unknown flag: chwon (did you mean chown?)"
    );
    assert_eq!(
        error_at("FROM a\nXYZZY q\n").0,
        "unknown instruction: XYZZY"
    );
    assert_eq!(
        error_at("FROM a\nRUN --mount=type=cache,traget=/x true\n").0,
        "unexpected key 'traget' in 'traget=/x' (did you mean target?)"
    );
}
