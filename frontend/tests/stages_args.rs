//! ARG/ENV scoping, platform ARGs and expansion over real Dockerfile text.

use std::collections::BTreeMap;

use dray_frontend::instructions::{self, ChmodSpec, Command, Mount, MountType};
use dray_frontend::parser;
use dray_frontend::stages::{
    self, Base, Error, Platform, ResolveOptions, ResolvedStage, StageGraph,
};

fn opts(args: &[(&str, &str)]) -> ResolveOptions {
    ResolveOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: None,
        target_platform: Platform::parse("linux/arm/v7").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
    }
}

fn resolve_with(src: &str, args: &[(&str, &str)]) -> Result<StageGraph, Error> {
    let ast = parser::parse(src.as_bytes()).expect("parses");
    let df = instructions::parse(&ast).expect("valid instructions");
    stages::resolve(&df, &opts(args))
}

fn target(src: &str, args: &[(&str, &str)]) -> ResolvedStage {
    let g = resolve_with(src, args).unwrap();
    g.target_stage().unwrap().clone()
}

/// The WORKDIR paths of a stage, in order: an easy probe of expansion.
fn workdirs(stage: &ResolvedStage) -> Vec<String> {
    stage
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Workdir(w) => Some(w.path.value.clone()),
            _ => None,
        })
        .collect()
}

fn env<'a>(stage: &'a ResolvedStage, key: &str) -> Option<&'a str> {
    stage
        .env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn global_args_are_only_for_from_until_redeclared() {
    let src =
        "ARG IMG=alpine TAG=3.20\nFROM $IMG:${TAG}\nWORKDIR /a/$TAG\nARG TAG\nWORKDIR /b/$TAG\n";
    let s = target(src, &[]);
    assert_eq!(
        s.base,
        Base::Image {
            reference: "alpine:3.20".into()
        }
    );
    assert_eq!(workdirs(&s), ["/a/", "/b/3.20"]);
    let s = target(src, &[("TAG", "edge")]);
    assert_eq!(
        s.base,
        Base::Image {
            reference: "alpine:edge".into()
        }
    );
    assert_eq!(workdirs(&s), ["/a/", "/b/edge"]);
}

#[test]
fn meta_arg_defaults_see_earlier_meta_args_and_platform_args() {
    let src = "ARG A=x\nARG B=${A}y-$TARGETARCH\nFROM img:$B\n";
    let g = resolve_with(src, &[]).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "img:xy-arm".into()
        }
    );
    assert_eq!(g.global_args.values["B"], "xy-arm");
    let g = resolve_with(src, &[("A", "z")]).unwrap();
    assert_eq!(
        g.stages[0].base,
        Base::Image {
            reference: "img:zy-arm".into()
        }
    );
}

#[test]
fn arg_takes_effect_from_its_line_and_build_args_override_defaults() {
    let src = "FROM s\nWORKDIR /$V\nARG V=default\nWORKDIR /$V\nARG V\nWORKDIR /$V\n";
    assert_eq!(workdirs(&target(src, &[])), ["/", "/default", "/default"]);
    assert_eq!(
        workdirs(&target(src, &[("V", "cli")])),
        ["/", "/cli", "/cli"]
    );
}

#[test]
fn build_args_do_not_leak_into_undeclared_variables() {
    let g = resolve_with("FROM s\nWORKDIR /$SECRET\n", &[("SECRET", "x")]).unwrap();
    assert_eq!(workdirs(&g.stages[0]), ["/"]);
    assert_eq!(g.unused_build_args, ["SECRET"]);
    let g = resolve_with("FROM s\nARG SECRET\n", &[("SECRET", "x")]).unwrap();
    assert!(g.unused_build_args.is_empty());
}

#[test]
fn env_overrides_arg_of_the_same_name() {
    let src = "FROM s\nARG V=arg\nENV V=env\nWORKDIR /$V\n";
    let s = target(src, &[("V", "cli")]);
    assert_eq!(workdirs(&s), ["/env"]);
    assert_eq!(env(&s, "V"), Some("env"));
    assert!(s.config_env.iter().any(|(k, v)| k == "V" && v == "env"));
    // ARG values reach RUN but not the image config.
    let s = target("FROM s\nARG ONLY=1\n", &[]);
    assert_eq!(env(&s, "ONLY"), Some("1"));
    assert!(!s.config_env.iter().any(|(k, _)| k == "ONLY"));
    assert_eq!(s.args[0].value.as_deref(), Some("1"));
}

#[test]
fn one_value_per_variable_per_instruction() {
    let s = target("FROM s\nENV a=old\nENV a=new b=$a\nWORKDIR /$b\n", &[]);
    assert_eq!(env(&s, "b"), Some("old"));
    assert_eq!(workdirs(&s), ["/old"]);
    // ARG is sequential within one line, as in BuildKit's dispatchArg.
    let s = target("FROM s\nARG x=1 y=${x}2\n", &[]);
    assert_eq!(env(&s, "y"), Some("12"));
}

#[test]
fn env_values_lose_their_quotes_and_keys_expand() {
    let s = target("FROM s\nENV K=name\nENV $K=\"a b\" 'c'=d\n", &[]);
    assert_eq!(env(&s, "name"), Some("a b"));
    assert_eq!(env(&s, "c"), Some("d"));
    let s = target("FROM s\nLABEL \"x.y\"=\"$HOME-1\"\n", &[]);
    let Command::Label(l) = &s.commands[0] else {
        panic!()
    };
    assert_eq!(
        (l.labels[0].key.as_str(), l.labels[0].value.as_str()),
        ("x.y", "-1")
    );
}

#[test]
fn platform_args_are_predefined_in_from_and_need_declaring_in_stages() {
    let src = "FROM --platform=$BUILDPLATFORM golang AS build\nWORKDIR /$TARGETARCH\nARG TARGETARCH TARGETVARIANT BUILDOS\nWORKDIR /$TARGETARCH/$TARGETVARIANT/$BUILDOS\n";
    let g = resolve_with(src, &[]).unwrap();
    let s = &g.stages[0];
    assert_eq!(
        s.platform.to_string(),
        "linux/amd64",
        "--platform=$BUILDPLATFORM"
    );
    assert_eq!(workdirs(s), ["/", "/arm/v7/linux"]);
    let g = resolve_with("FROM alpine\n", &[]).unwrap();
    assert_eq!(
        g.stages[0].platform.to_string(),
        "linux/arm/v7",
        "default is the target platform"
    );
    let s = target(
        "ARG TARGETOS\nFROM s\nARG TARGETOS\nWORKDIR /$TARGETOS\n",
        &[("TARGETOS", "windows")],
    );
    assert_eq!(
        workdirs(&s),
        ["/windows"],
        "build args override predefined values"
    );
}

#[test]
fn platform_errors() {
    let err = resolve_with("FROM --platform=$NOPE alpine\n", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "empty platform value from expression $NOPE"
    );
    let err = resolve_with("FROM --platform=linux/bogus alpine\n", &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to parse platform linux/bogus"),
        "{err}"
    );
    let err = resolve_with("ARG IMG\nFROM $IMG\n", &[]).unwrap_err();
    assert_eq!(err.to_string(), "base name ($IMG) should not be blank");
}

#[test]
fn required_variable_errors_carry_the_instruction_span() {
    let src = "FROM s\nWORKDIR ${DIR:?must be set}\n";
    let err = resolve_with(src, &[]).unwrap_err();
    assert_eq!(err.to_string(), "DIR: must be set");
    let lc = dray_frontend::LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!((lc.line, lc.column), (2, 1));
    let err = resolve_with("ARG X=${Y:?}\nFROM s\n", &[]).unwrap_err();
    assert!(matches!(err, Error::Expansion { .. }));
}

#[test]
fn expose_expands_splits_and_validates_ports() {
    let s = target(
        "FROM s\nARG PORTS=\"80 443/udp\"\nEXPOSE $PORTS 8000-8010/tcp\n",
        &[],
    );
    let Command::Expose(e) = &s.commands[1] else {
        panic!()
    };
    let ports: Vec<_> = e.ports.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(ports, ["80", "443/udp", "8000-8010/tcp"]);
    let spec = instructions::parse_port(&e.ports[2].value).unwrap();
    assert_eq!(spec.config_keys().len(), 11);
    let err = resolve_with("FROM s\nARG P=8080/http\nEXPOSE $P\n", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid port specification \"8080/http\": invalid proto: http"
    );
    let err = resolve_with("FROM s\nEXPOSE 9000-8000\n", &[]).unwrap_err();
    assert!(err.to_string().contains("9000 is greater than 8000"));
}

#[test]
fn copy_flags_expand_except_from() {
    let s = target(
        "FROM s\nARG U=app M=u=rwX,go=rX D=/dst\nCOPY --chown=$U:$U --chmod=$M --exclude=*.$U src $D/\n",
        &[],
    );
    let Command::Copy(c) = &s.commands[1] else {
        panic!()
    };
    assert_eq!(c.chown.as_ref().unwrap().value, "app:app");
    assert!(matches!(
        c.chmod.as_ref().unwrap().mode,
        Some(ChmodSpec::Symbolic(_))
    ));
    assert_eq!(c.exclude[0].value, "*.app");
    assert_eq!(c.files.dest.value, "/dst/");
    let s = target(
        "FROM s\nARG M=0755\nADD --chmod=$M --checksum=sha256:$M x /y\n",
        &[],
    );
    let Command::Add(a) = &s.commands[1] else {
        panic!()
    };
    assert_eq!(
        a.chmod.as_ref().unwrap().mode,
        Some(ChmodSpec::Octal(0o755))
    );
    assert_eq!(a.checksum.as_ref().unwrap().value, "sha256:0755");
    let err = resolve_with("FROM s\nARG M=rwx\nCOPY --chmod=$M a b\n", &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid chmod parameter \"rwx\""),
        "{err}"
    );
}

#[test]
fn heredoc_sources_expand_without_quote_removal() {
    let s = target(
        "FROM s\nARG N=world\nCOPY <<EOF <<'RAW' /\necho \"hello $N\"\nEOF\n$N\nRAW\n",
        &[],
    );
    let Command::Copy(c) = &s.commands[1] else {
        panic!()
    };
    assert_eq!(c.files.contents[0].data, "echo \"hello world\"\n");
    assert_eq!(c.files.contents[1].data, "$N\n");
}

fn mounts(stage: &ResolvedStage) -> Vec<Mount> {
    stage
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Run(r) => Some(r.mounts.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn mount_values_expand_at_run_time() {
    let s = target(
        "FROM s\nARG T=cache DIR=/root/.cache ID=gomod\nRUN --mount=type=$T,target=$DIR,id=$ID,uid=${UID:-1000} go build\n",
        &[],
    );
    let m = &mounts(&s)[0];
    assert_eq!(m.kind, MountType::Cache);
    assert_eq!(m.target.as_deref(), Some("/root/.cache"));
    assert_eq!(m.id.as_deref(), Some("gomod"));
    assert_eq!(m.uid, Some(1000));
    assert!(!m.unexpanded);
    let err = resolve_with(
        "FROM s\nARG T=tmpfs\nRUN --mount=type=$T,target=/t,uid=1 true\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "uid not allowed for \"tmpfs\" type mounts");
}

#[test]
fn stopsignal_user_volume_expand() {
    let s = target(
        "FROM s\nARG SIG=SIGKILL U=nobody V=/data\nSTOPSIGNAL $SIG\nUSER $U:$U\nVOLUME $V /logs\n",
        &[],
    );
    let Command::StopSignal(sig) = &s.commands[1] else {
        panic!()
    };
    assert_eq!(sig.signal.value, "SIGKILL");
    let Command::User(u) = &s.commands[2] else {
        panic!()
    };
    assert_eq!(u.user_and_group(), ("nobody", Some("nobody")));
    let Command::Volume(v) = &s.commands[3] else {
        panic!()
    };
    assert_eq!(v.volumes[0].value, "/data");
    let err = resolve_with("FROM s\nSTOPSIGNAL SIGNOPE\n", &[]).unwrap_err();
    assert_eq!(err.to_string(), "invalid signal: SIGNOPE");
}

#[test]
fn run_command_lines_and_onbuild_are_not_expanded() {
    let s = target(
        "FROM s\nARG A=1\nRUN echo $A\nCMD echo $A\nONBUILD RUN echo $A\n",
        &[],
    );
    let Command::Run(r) = &s.commands[1] else {
        panic!()
    };
    assert_eq!(r.command.args, ["echo $A"]);
    let Command::Onbuild(o) = &s.commands[3] else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo $A");
}

#[test]
fn base_image_env_and_default_path() {
    let ast = parser::parse(b"FROM golang:1.23\nENV PATH=/x:$PATH GO=$GOPATH\n").unwrap();
    let df = instructions::parse(&ast).unwrap();
    let mut images = BTreeMap::new();
    images.insert(
        "golang:1.23".to_string(),
        vec![
            ("PATH".to_string(), "/go/bin:/usr/bin".to_string()),
            ("GOPATH".to_string(), "/go".to_string()),
        ],
    );
    let g = stages::resolve_with_images(&df, &opts(&[]), &images).unwrap();
    assert_eq!(env(&g.stages[0], "PATH"), Some("/x:/go/bin:/usr/bin"));
    assert_eq!(env(&g.stages[0], "GO"), Some("/go"));
    let s = target("FROM scratch\nENV PATH=/x:$PATH\n", &[]);
    assert_eq!(
        env(&s, "PATH"),
        Some("/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
}

#[test]
fn stages_inherit_env_and_args_from_their_base_stage() {
    let s = target(
        "FROM s AS a\nARG V=1\nENV E=2\nFROM a\nWORKDIR /$V/$E\n",
        &[],
    );
    assert_eq!(workdirs(&s), ["/1/2"]);
    assert_eq!(s.args[0].name, "V");
}

#[test]
fn proxy_build_args_need_no_declaration() {
    let g = resolve_with(
        "FROM s\nRUN curl example.com\n",
        &[("HTTP_PROXY", "http://p:3128"), ("no_proxy", "localhost")],
    )
    .unwrap();
    assert_eq!(g.proxy_env.len(), 2);
    assert_eq!(g.proxy_env["HTTP_PROXY"], "http://p:3128");
    assert!(g.unused_build_args.is_empty());
    assert!(
        env(&g.stages[0], "HTTP_PROXY").is_none(),
        "kept out of the stage environment"
    );
}

#[test]
fn escape_directive_applies_to_expansion() {
    let s = target("# escape=`\nFROM s\nARG A=x\nWORKDIR C:\\`$A\\$A\n", &[]);
    assert_eq!(workdirs(&s), ["C:\\$A\\x"]);
}

#[test]
fn a_stage_based_on_a_stage_keeps_its_platform() {
    let g = resolve_with(
        "FROM --platform=linux/amd64 alpine AS a\nFROM --platform=linux/s390x a\n",
        &[],
    )
    .unwrap();
    assert_eq!(g.stages[0].platform.to_string(), "linux/amd64");
    assert_eq!(g.stages[1].platform.to_string(), "linux/amd64");
    let g = resolve_with("FROM alpine AS a\nFROM a\n", &[]).unwrap();
    assert_eq!(g.stages[1].platform.to_string(), "linux/arm/v7");
}
