//! Fixture cases for the stage graph: `stages_fixtures/<case>/{Dockerfile,options,expected}`.
//!
//! `options` holds one setting per line: `target=<name>`, `build-arg=<NAME>=<value>`,
//! `platform=<target platform>`, `build-platform=<platform>`. `expected` is a compact
//! rendering of the resolved graph (see [`render`]) or `error: <message> @ <line>:<column>`.
//! Run with `DRAY_BLESS=1` to rewrite the `expected` files after a deliberate change.

use std::fmt::Write as _;
use std::path::Path;

use dray_frontend::LineIndex;
use dray_frontend::instructions::{self, Command};
use dray_frontend::parser;
use dray_frontend::stages::{self, Base, Platform, ResolveOptions, StageGraph};

fn options(text: &str) -> ResolveOptions {
    let mut opts = ResolveOptions {
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..ResolveOptions::default()
    };
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.split_once('=').expect("options lines are key=value");
        match key {
            "target" => opts.target = Some(value.to_string()),
            "build-arg" => {
                let (k, v) = value.split_once('=').expect("build-arg=NAME=value");
                opts.build_args.insert(k.to_string(), v.to_string());
            }
            "platform" => opts.target_platform = Platform::parse(value).unwrap(),
            "build-platform" => opts.build_platform = Platform::parse(value).unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    opts
}

fn words<'a>(words: impl IntoIterator<Item = &'a dray_frontend::instructions::Word>) -> String {
    words
        .into_iter()
        .map(|w| w.value.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line per command, showing the expanded values.
fn command(c: &Command) -> String {
    match c {
        Command::Arg(a) => {
            let decls: Vec<String> = a
                .args
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            format!("ARG {}", decls.join(" "))
        }
        Command::Env(e) => {
            let kvs: Vec<String> = e
                .env
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            format!("ENV {}", kvs.join(" "))
        }
        Command::Label(l) => {
            let kvs: Vec<String> = l
                .labels
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            format!("LABEL {}", kvs.join(" "))
        }
        Command::Copy(c) => {
            let heredocs: Vec<String> = c
                .files
                .contents
                .iter()
                .map(|h| format!("<<{}={:?}", h.path, h.data))
                .collect();
            format!(
                "COPY from={} chown={} chmod={} {}{} -> {}",
                c.from.as_ref().map_or("-", |w| w.value.as_str()),
                c.chown.as_ref().map_or("-", |w| w.value.as_str()),
                c.chmod.as_ref().map_or("-", |m| m.value.value.as_str()),
                words(&c.files.sources),
                heredocs.join(" "),
                c.files.dest.value
            )
        }
        Command::Add(a) => format!("ADD {} -> {}", words(&a.files.sources), a.files.dest.value),
        Command::Run(r) => {
            let mounts: Vec<String> = r
                .mounts
                .iter()
                .map(|m| {
                    format!(
                        "{}:{}{}",
                        m.kind.as_str(),
                        m.target.as_deref().unwrap_or("-"),
                        m.from.as_ref().map(|f| format!("<{f}")).unwrap_or_default()
                    )
                })
                .collect();
            format!("RUN {:?} mounts=[{}]", r.command.args, mounts.join(" "))
        }
        Command::Workdir(w) => format!("WORKDIR {}", w.path.value),
        Command::User(u) => format!("USER {}", u.user.value),
        Command::Expose(e) => format!("EXPOSE {}", words(&e.ports)),
        Command::Volume(v) => format!("VOLUME {}", words(&v.volumes)),
        Command::StopSignal(s) => format!("STOPSIGNAL {}", s.signal.value),
        other => other.origin().original.clone(),
    }
}

/// The compact rendering compared with `expected`.
fn render(g: &StageGraph) -> String {
    let mut out = format!("target: {}\n", g.target);
    for s in &g.stages {
        let base = match &s.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image { reference } => format!("image {reference}"),
            Base::Stage { index } => format!("stage {index}"),
        };
        let _ = writeln!(
            out,
            "stage {} {} <- {base} [{}] deps={:?}",
            s.index,
            s.name.as_deref().unwrap_or("-"),
            s.platform,
            s.deps
        );
        for c in &s.commands {
            let _ = writeln!(out, "  {}", command(c));
        }
        let env: Vec<String> = s
            .env
            .iter()
            .filter(|(k, _)| k != "PATH")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "  env: {}", env.join(" "));
    }
    if !g.unused_build_args.is_empty() {
        let _ = writeln!(out, "unused build args: {}", g.unused_build_args.join(" "));
    }
    out
}

fn run_case(dir: &Path) -> String {
    let src = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let opts = options(&std::fs::read_to_string(dir.join("options")).unwrap_or_default());
    let index = LineIndex::new(src.as_bytes());
    let at = |span: dray_frontend::Span| {
        let lc = index.line_column(span.start);
        format!("{}:{}", lc.line, lc.column)
    };
    let ast = parser::parse(src.as_bytes()).expect("fixtures parse");
    let df = match instructions::parse(&ast) {
        Ok(df) => df,
        Err(e) => return format!("error: {e} @ {}\n", at(e.span())),
    };
    match stages::resolve(&df, &opts) {
        Ok(g) => render(&g),
        Err(e) => format!("error: {e} @ {}\n", at(e.span())),
    }
}

#[test]
fn fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stages_fixtures");
    let bless = std::env::var_os("DRAY_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "fixture cases are missing");
    let mut failures = Vec::new();
    for dir in cases {
        let actual = run_case(&dir);
        let expected_path = dir.join("expected");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                dir.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
