//! Unit tests over hand-built nodes (the parser is tested on its own).

use super::*;
use crate::parser::{Arg, Directives, Flag, Heredoc, Node};
use crate::span::LineIndex;

/// Builds nodes and the matching source text, one instruction per line.
#[derive(Default)]
struct Src {
    text: String,
    nodes: Vec<Node>,
}

impl Src {
    /// Adds `keyword flags… args…` as one line; `json` marks exec form.
    fn add(&mut self, keyword: &str, flags: &[&str], args: &[&str], json: bool) -> &mut Node {
        let line = self.text.matches('\n').count() + 1;
        let start = self.text.len();
        self.text.push_str(keyword);
        let keyword_span = Span::new(start, self.text.len());
        let word = |text: &mut String, w: &str| {
            text.push(' ');
            let s = text.len();
            text.push_str(w);
            Span::new(s, text.len())
        };
        let flags = flags
            .iter()
            .map(|f| Flag {
                text: f.to_string(),
                span: word(&mut self.text, f),
            })
            .collect();
        let args = args
            .iter()
            .map(|a| Arg {
                value: a.to_string(),
                span: word(&mut self.text, a),
            })
            .collect();
        let original = self.text[start..].to_string();
        let span = Span::new(start, self.text.len());
        self.text.push('\n');
        self.nodes.push(Node {
            keyword: keyword.to_string(),
            keyword_span,
            flags,
            args,
            json,
            onbuild: None,
            heredocs: Vec::new(),
            original,
            span,
            start_line: line,
            end_line: line,
            prev_comment: Vec::new(),
        });
        self.nodes.last_mut().unwrap_or_else(|| unreachable!())
    }

    fn ast(&self) -> Ast {
        Ast {
            directives: Directives::default(),
            instructions: self.nodes.clone(),
            warnings: vec![],
            escape: '\\',
        }
    }

    fn parse(&self) -> Result<Dockerfile, Error> {
        parse(&self.ast())
    }

    /// The line and column of an error's span start.
    fn at(&self, err: &Error) -> (usize, usize) {
        let lc = LineIndex::new(self.text.as_bytes()).line_column(err.span().start);
        (lc.line, lc.column)
    }
}

fn one_command(keyword: &str, flags: &[&str], args: &[&str], json: bool) -> Result<Command, Error> {
    let mut src = Src::default();
    src.add("FROM", &[], &["alpine"], false);
    src.add(keyword, flags, args, json);
    let mut df = src.parse()?;
    Ok(df.stages.remove(0).commands.remove(0))
}

fn err(keyword: &str, flags: &[&str], args: &[&str], json: bool) -> String {
    one_command(keyword, flags, args, json)
        .unwrap_err()
        .to_string()
}

#[test]
fn stages_and_meta_args() {
    let mut src = Src::default();
    src.add("ARG", &[], &["VERSION=1", "OTHER"], false);
    src.add(
        "FROM",
        &["--platform=$BUILDPLATFORM"],
        &["golang:$VERSION", "AS", "Build"],
        false,
    );
    src.add("RUN", &[], &["go build"], false);
    src.add("from", &[], &["scratch"], false);
    src.add("copy", &["--from=build"], &["/out", "/"], false);
    let df = src.parse().unwrap();
    assert_eq!(df.meta_args.len(), 1);
    assert_eq!(df.meta_args[0].args[0].name, "VERSION");
    assert_eq!(df.meta_args[0].args[0].default.as_deref(), Some("1"));
    assert_eq!(df.meta_args[0].args[1].default, None);
    assert_eq!(df.stages.len(), 2);
    let build = &df.stages[0];
    assert_eq!(
        build.name.as_deref(),
        Some("build"),
        "stage names are lowercased"
    );
    assert_eq!(build.base, "golang:$VERSION", "the base stays unexpanded");
    assert_eq!(build.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(build.commands.len(), 1);
    assert_eq!(df.stages[1].display_name(), "stage-1");
    let Command::Copy(copy) = &df.stages[1].commands[0] else {
        panic!("not a copy")
    };
    assert_eq!(copy.from.as_ref().map(|w| w.value.as_str()), Some("build"));
}

#[test]
fn unknown_instruction_points_at_the_keyword() {
    let mut src = Src::default();
    src.add("FROM", &[], &["alpine"], false);
    src.add("FOO", &[], &[""], false);
    let e = src.parse().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown instruction: FOO (did you mean from?)"
    );
    assert_eq!(src.at(&e), (2, 1));
    assert_eq!(e.span().len(), 3);
}

#[test]
fn instructions_before_from_are_rejected() {
    let mut src = Src::default();
    src.add("ARG", &[], &["A"], false);
    src.add("RUN", &[], &["true"], false);
    let e = src.parse().unwrap_err();
    assert_eq!(e.to_string(), "no build stage in current context");
    assert_eq!(src.at(&e), (2, 1));
}

#[test]
fn from_arguments_and_stage_names() {
    let mut src = Src::default();
    src.add("FROM", &[], &["a", "b"], false);
    assert_eq!(
        src.parse().unwrap_err().to_string(),
        "FROM requires either one or three arguments"
    );
    let mut src = Src::default();
    src.add("FROM", &[], &["a", "AS", "1st"], false);
    let e = src.parse().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
    );
    assert_eq!(src.at(&e), (1, 11));
    let mut src = Src::default();
    src.add("FROM", &[], &["a", "as", "my-stage_1.x"], false);
    assert_eq!(
        src.parse().unwrap().stages[0].name.as_deref(),
        Some("my-stage_1.x")
    );
    let mut src = Src::default();
    src.add("FROM", &["--plat=x"], &["a"], false);
    assert_eq!(src.parse().unwrap_err().to_string(), "unknown flag: plat");
    let mut src = Src::default();
    src.add("FROM", &[], &["a", "AS", "b$c"], false);
    assert!(matches!(src.parse(), Err(Error::InvalidStageName { .. })));
}

#[test]
fn run_flags() {
    let Command::Run(run) = one_command(
        "RUN",
        &[
            "--mount=type=cache,target=/c",
            "--mount=type=secret,id=x",
            "--network=none",
            "--security=insecure",
        ],
        &["make"],
        false,
    )
    .unwrap() else {
        panic!("not a run")
    };
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[1].kind, MountType::Secret);
    assert_eq!(run.network, Some(NetworkMode::None));
    assert_eq!(run.security, Some(SecurityMode::Insecure));
    assert_eq!(run.command.args, ["make"]);
    assert!(run.command.prepend_shell);
    assert_eq!(
        err("RUN", &["--network=bridge"], &["x"], false),
        "unsupported network mode \"bridge\""
    );
    assert_eq!(
        err("RUN", &["--security=root"], &["x"], false),
        "unsupported security mode \"root\""
    );
    assert_eq!(
        err("RUN", &["--network=host", "--network=none"], &["x"], false),
        "duplicate flag specified: network"
    );
    assert_eq!(
        err("RUN", &["--mount=type=nope"], &["x"], false),
        "unsupported mount type \"nope\""
    );
    assert_eq!(
        err("RUN", &["--mount"], &["x"], false),
        "missing a value on flag: mount"
    );
    assert_eq!(
        err("RUN", &["--device=x"], &["x"], false),
        "unknown flag: device"
    );
}

#[test]
fn run_exec_form_and_heredocs() {
    let Command::Run(run) = one_command("RUN", &[], &["echo", "a b"], true).unwrap() else {
        panic!()
    };
    assert_eq!(run.command.args, ["echo", "a b"]);
    assert!(!run.command.prepend_shell);
    let mut src = Src::default();
    src.add("FROM", &[], &["alpine"], false);
    src.add("RUN", &[], &["<<EOF"], false)
        .heredocs
        .push(Heredoc {
            name: "EOF".into(),
            content: "echo hi\n".into(),
            file_descriptor: 0,
            expand: true,
            chomp: false,
            span: Span::new(0, 0),
        });
    let df = src.parse().unwrap();
    let Command::Run(run) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert_eq!(run.command.files.len(), 1);
    assert_eq!(run.command.files[0].data, "echo hi\n");
}

#[test]
fn copy_and_add_flags() {
    let Command::Copy(c) = one_command(
        "COPY",
        &[
            "--from=0",
            "--chown=app:app",
            "--chmod=u=rwX,go=rX",
            "--link",
            "--parents=false",
            "--exclude=*.md",
            "--exclude=.git",
        ],
        &["a", "b", "/dst/"],
        false,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        c.files
            .sources
            .iter()
            .map(|w| w.value.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(c.files.dest.value, "/dst/");
    assert!(c.link);
    assert!(!c.parents);
    assert_eq!(c.exclude.len(), 2);
    assert!(matches!(
        c.chmod.as_ref().and_then(|m| m.mode.as_ref()),
        Some(ChmodSpec::Symbolic(_))
    ));
    let Command::Add(a) = one_command(
        "ADD",
        &[
            "--checksum=sha256:abc",
            "--keep-git-dir",
            "--unpack=false",
            "--chmod=0755",
        ],
        &["https://x/y.tar", "/y"],
        false,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(a.unpack, Some(false));
    assert!(a.keep_git_dir);
    assert_eq!(a.chmod.and_then(|c| c.mode), Some(ChmodSpec::Octal(0o755)));
    assert_eq!(a.checksum.map(|w| w.value), Some("sha256:abc".to_string()));
    assert_eq!(
        err("COPY", &[], &["onlyone"], false),
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        err("ADD", &["--from=x"], &["a", "b"], false),
        "unknown flag: from"
    );
    assert_eq!(
        err("COPY", &["--checksum=x"], &["a", "b"], false),
        "unknown flag: checksum"
    );
    assert_eq!(
        err("COPY", &["--link=maybe"], &["a", "b"], false),
        "expecting boolean value for flag link, not: maybe"
    );
    assert!(
        err("COPY", &["--chmod=999"], &["a", "b"], false)
            .starts_with("invalid chmod parameter \"999\"")
    );
    // A chmod with a variable is checked after expansion.
    let Command::Copy(c) = one_command("COPY", &["--chmod=$MODE"], &["a", "b"], false).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.chmod.map(|c| c.mode), Some(None));
}

#[test]
fn copy_heredoc_sources() {
    let mut src = Src::default();
    src.add("FROM", &[], &["alpine"], false);
    src.add("COPY", &[], &["<<-EOF", "/etc/x"], false)
        .heredocs
        .push(Heredoc {
            name: "EOF".into(),
            content: "x=$y\n".into(),
            file_descriptor: 0,
            expand: false,
            chomp: true,
            span: Span::new(0, 0),
        });
    let df = src.parse().unwrap();
    let Command::Copy(c) = &df.stages[0].commands[0] else {
        panic!()
    };
    assert!(c.files.sources.is_empty());
    assert_eq!(c.files.contents[0].path, "EOF");
    assert_eq!(c.files.contents[0].data, "x=$y\n");
    assert!(!c.files.contents[0].expand);
    assert_eq!(
        err("COPY", &[], &["a", "<<EOF"], false),
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn env_label_and_arg() {
    let Command::Env(e) =
        one_command("ENV", &[], &["a", "\"x y\"", "=", "b", "$a", "="], false).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.env.len(), 2);
    assert_eq!(e.env[0].value, "\"x y\"", "quotes stay until expansion");
    assert!(!e.env[0].legacy);
    let Command::Env(e) = one_command("ENV", &[], &["PATH", "/a b", ""], false).unwrap() else {
        panic!()
    };
    assert!(e.env[0].legacy);
    assert_eq!(
        err("ENV", &[], &[], false),
        "ENV requires at least one argument"
    );
    assert_eq!(
        err("ENV", &[], &["", "v", "="], false),
        "ENV names can not be blank"
    );
    assert_eq!(
        err("LABEL", &[], &["a", "b"], false),
        "bad input to LABEL, too many arguments"
    );
    let Command::Label(l) = one_command("LABEL", &[], &["org.x", "1", "="], false).unwrap() else {
        panic!()
    };
    assert_eq!(l.labels[0].key, "org.x");
    let Command::Arg(a) =
        one_command("ARG", &[], &["abc=\"123 456\"", "def", "e="], false).unwrap()
    else {
        panic!()
    };
    assert_eq!(a.args[0].default.as_deref(), Some("\"123 456\""));
    assert_eq!(a.args[1].default, None);
    assert_eq!(a.args[2].default.as_deref(), Some(""));
    assert_eq!(
        err("ARG", &[], &["=x"], false),
        "ARG names can not be blank"
    );
    assert_eq!(
        err("ARG", &[], &[], false),
        "ARG requires at least one argument"
    );
}

#[test]
fn single_argument_instructions() {
    assert_eq!(
        err("WORKDIR", &[], &[], false),
        "WORKDIR requires exactly one argument"
    );
    assert_eq!(
        err("USER", &[], &[], false),
        "USER requires exactly one argument"
    );
    assert_eq!(
        err("STOPSIGNAL", &[], &[], false),
        "STOPSIGNAL requires exactly one argument"
    );
    assert_eq!(
        err("MAINTAINER", &[], &[], false),
        "MAINTAINER requires exactly one argument"
    );
    assert_eq!(err("WORKDIR", &["--x"], &["/a"], false), "unknown flag: x");
    let Command::User(u) = one_command("USER", &[], &["app:staff"], false).unwrap() else {
        panic!()
    };
    assert_eq!(u.user_and_group(), ("app", Some("staff")));
    let Command::User(u) = one_command("USER", &[], &["1000"], false).unwrap() else {
        panic!()
    };
    assert_eq!(u.user_and_group(), ("1000", None));
}

#[test]
fn expose_volume_shell_cmd_entrypoint() {
    let Command::Expose(e) = one_command("EXPOSE", &[], &["80", "8000-8010/udp"], false).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.ports.len(), 2);
    assert_eq!(
        err("EXPOSE", &[], &[], false),
        "EXPOSE requires at least one argument"
    );
    let Command::Volume(v) = one_command("VOLUME", &[], &["/a", "/b"], true).unwrap() else {
        panic!()
    };
    assert_eq!(v.volumes.len(), 2);
    assert_eq!(
        err("VOLUME", &[], &[" "], true),
        "VOLUME specified can not be an empty string"
    );
    assert_eq!(
        err("SHELL", &[], &["bash -c"], false),
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("SHELL", &[], &[], true),
        "SHELL requires at least one argument"
    );
    let Command::Shell(s) = one_command("SHELL", &[], &["bash", "-c"], true).unwrap() else {
        panic!()
    };
    assert_eq!(s.shell, ["bash", "-c"]);
    let Command::Entrypoint(e) = one_command("ENTRYPOINT", &[], &[], true).unwrap() else {
        panic!()
    };
    assert!(e.command.args.is_empty());
    let Command::Cmd(c) = one_command("CMD", &[], &["echo $HOME"], false).unwrap() else {
        panic!()
    };
    assert_eq!(c.command.args, ["echo $HOME"]);
    assert!(c.command.prepend_shell);
}

#[test]
fn healthcheck() {
    let Command::Healthcheck(h) = one_command(
        "HEALTHCHECK",
        &[
            "--interval=1m30s",
            "--timeout=3s",
            "--retries=3",
            "--start-period=0",
            "--start-interval=5ms",
        ],
        &["CMD", "curl -f http://localhost/"],
        false,
    )
    .unwrap() else {
        panic!()
    };
    let Healthcheck::Cmd {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    } = h.health
    else {
        panic!("not cmd")
    };
    assert_eq!(test, ["CMD-SHELL", "curl -f http://localhost/"]);
    assert_eq!(interval, Some(std::time::Duration::from_secs(90)));
    assert_eq!(timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(start_period, None, "0 means the default");
    assert_eq!(start_interval, Some(std::time::Duration::from_millis(5)));
    assert_eq!(retries, Some(3));
    let Command::Healthcheck(h) =
        one_command("HEALTHCHECK", &[], &["cmd", "curl", "-f"], true).unwrap()
    else {
        panic!()
    };
    assert!(
        matches!(h.health, Healthcheck::Cmd { ref test, .. } if test == &["CMD", "curl", "-f"])
    );
    let Command::Healthcheck(h) = one_command("HEALTHCHECK", &[], &["NONE"], false).unwrap() else {
        panic!()
    };
    assert_eq!(h.health, Healthcheck::None);
    assert_eq!(
        err("HEALTHCHECK", &[], &["NONE", "x"], false),
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("HEALTHCHECK", &[], &["CMD"], false),
        "missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("HEALTHCHECK", &[], &["CONNECT", "x"], false),
        "unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("HEALTHCHECK", &["--interval=30"], &["CMD", "x"], false),
        "invalid duration \"30\" for --interval"
    );
    assert_eq!(
        err("HEALTHCHECK", &["--timeout=100us"], &["CMD", "x"], false),
        "interval \"timeout\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK", &["--timeout=-1s"], &["CMD", "x"], false),
        "interval \"timeout\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK", &["--retries=-1"], &["CMD", "x"], false),
        "--retries cannot be negative (-1)"
    );
    assert_eq!(
        err("HEALTHCHECK", &["--retries=x"], &["CMD", "x"], false),
        "invalid value \"x\" for --retries"
    );
    assert_eq!(
        err("HEALTHCHECK", &[], &[], false),
        "HEALTHCHECK requires at least one argument"
    );
}

fn onbuild(inner_keyword: &str, inner_args: &[&str]) -> Result<Command, Error> {
    let mut src = Src::default();
    src.add("FROM", &[], &["alpine"], false);
    let original = format!("ONBUILD {inner_keyword} {}", inner_args.join(" "));
    let mut inner = Src::default();
    inner.add(inner_keyword, &[], inner_args, false);
    let node = src.add("ONBUILD", &[], &[], false);
    let mut inner_node = inner.nodes.remove(0);
    inner_node.keyword_span = Span::new(
        node.span.start + 8,
        node.span.start + 8 + inner_keyword.len(),
    );
    node.onbuild = Some(Box::new(inner_node));
    node.original = original;
    let mut df = src.parse()?;
    Ok(df.stages.remove(0).commands.remove(0))
}

#[test]
fn onbuild_triggers() {
    let Command::Onbuild(o) = onbuild("run", &["echo", "$HOME"]).unwrap() else {
        panic!()
    };
    assert_eq!(o.trigger, "RUN");
    assert_eq!(o.expression, "run echo $HOME");
    let e = onbuild("ONBUILD", &["RUN", "x"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(e.span().len(), "ONBUILD".len());
    assert_eq!(
        onbuild("from", &["x"]).unwrap_err().to_string(),
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        onbuild("MAINTAINER", &["x"]).unwrap_err().to_string(),
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("ONBUILD", &[], &[], false),
        "ONBUILD requires at least one argument"
    );
}

#[test]
fn a_file_without_from_has_no_stages() {
    let mut src = Src::default();
    src.add("ARG", &[], &["A=1"], false);
    let df = src.parse().unwrap();
    assert!(df.stages.is_empty());
    assert_eq!(df.meta_args.len(), 1);
}
