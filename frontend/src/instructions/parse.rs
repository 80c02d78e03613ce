//! Per-instruction parsing: one function per keyword, as BuildKit's `parse.go`.
//!
//! Argument-count checks come before flag checks where BuildKit does it that way (COPY, ADD,
//! MAINTAINER, WORKDIR, USER…), so the same Dockerfile fails with the same message.

use crate::parser::{Arg, Node};

use super::chmod::parse_chmod;
use super::command::*;
use super::error::Error;
use super::flags::{FlagKind, ParsedFlags, parse_flags};
use super::mount::{parse_mount, parse_network, parse_security};
use super::suggest::did_you_mean;
use super::values::{nanos_to_duration, parse_go_duration};

/// Every instruction name, for suggestions.
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// BuildKit's stage-name rule `^[a-z][a-z0-9-_.]*$`, applied after lowercasing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// What FROM declares; the caller turns it into a [`super::Stage`].
pub(crate) struct FromInstruction {
    pub(crate) base: Word,
    pub(crate) name: Option<Word>,
    pub(crate) platform: Option<Word>,
}

/// A parsed instruction: a stage start or a command.
pub(crate) enum Instruction {
    From(FromInstruction),
    Command(Box<Command>),
}

pub(crate) fn origin(node: &Node) -> Origin {
    Origin {
        keyword: node.keyword.clone(),
        span: node.span,
        keyword_span: node.keyword_span,
        original: node.original.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
    }
}

fn values(args: &[Arg]) -> Vec<String> {
    args.iter().map(|a| a.value.clone()).collect()
}

fn exactly_one<'a>(node: &'a Node, instruction: &'static str) -> Result<&'a Arg, Error> {
    match node.args.as_slice() {
        [one] => Ok(one),
        _ => Err(Error::ExactlyOneArgument {
            instruction,
            span: node.span,
        }),
    }
}

fn no_flags(node: &Node) -> Result<ParsedFlags, Error> {
    parse_flags(&node.flags, &[])
}

/// Parses one instruction node.
pub(crate) fn parse_instruction(node: &Node) -> Result<Instruction, Error> {
    let command = match node.keyword.to_ascii_lowercase().as_str() {
        "from" => return parse_from(node).map(Instruction::From),
        "add" => Command::Add(parse_add(node)?),
        "arg" => Command::Arg(parse_arg(node)?),
        "cmd" => Command::Cmd(CmdCommand {
            command: parse_command_line(node)?,
            origin: origin(node),
        }),
        "copy" => Command::Copy(parse_copy(node)?),
        "entrypoint" => Command::Entrypoint(EntrypointCommand {
            command: parse_command_line(node)?,
            origin: origin(node),
        }),
        "env" => Command::Env(EnvCommand {
            env: parse_kvps(node, "ENV")?,
            origin: origin(node),
        }),
        "expose" => Command::Expose(parse_expose(node)?),
        "healthcheck" => Command::Healthcheck(parse_healthcheck(node)?),
        "label" => Command::Label(LabelCommand {
            labels: parse_kvps(node, "LABEL")?,
            origin: origin(node),
        }),
        "maintainer" => {
            let arg = exactly_one(node, "MAINTAINER")?;
            no_flags(node)?;
            Command::Maintainer(MaintainerCommand {
                maintainer: arg.value.clone(),
                origin: origin(node),
            })
        }
        "onbuild" => Command::Onbuild(parse_onbuild(node)?),
        "run" => Command::Run(parse_run(node)?),
        "shell" => Command::Shell(parse_shell(node)?),
        "stopsignal" => {
            let arg = exactly_one(node, "STOPSIGNAL")?;
            no_flags(node)?;
            Command::StopSignal(StopSignalCommand {
                signal: Word::new(&arg.value, arg.span),
                origin: origin(node),
            })
        }
        "user" => {
            let arg = exactly_one(node, "USER")?;
            no_flags(node)?;
            Command::User(UserCommand {
                user: Word::new(&arg.value, arg.span),
                origin: origin(node),
            })
        }
        "volume" => Command::Volume(parse_volume(node)?),
        "workdir" => {
            let arg = exactly_one(node, "WORKDIR")?;
            no_flags(node)?;
            Command::Workdir(WorkdirCommand {
                path: Word::new(&arg.value, arg.span),
                origin: origin(node),
            })
        }
        _ => {
            return Err(Error::UnknownInstruction {
                keyword: node.keyword.clone(),
                suggestion: did_you_mean(&node.keyword, INSTRUCTIONS.iter().copied(), false),
                span: node.keyword_span,
            });
        }
    };
    Ok(Instruction::Command(Box::new(command)))
}

fn parse_from(node: &Node) -> Result<FromInstruction, Error> {
    let (base, name) = match node.args.as_slice() {
        [base] => (base, None),
        [base, as_kw, name] if as_kw.value.eq_ignore_ascii_case("as") => {
            let lower = name.value.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(Error::InvalidStageName {
                    name: name.value.clone(),
                    span: name.span,
                });
            }
            (base, Some(Word::new(lower, name.span)))
        }
        _ => return Err(Error::FromArguments { span: node.span }),
    };
    let flags = parse_flags(&node.flags, &[("platform", FlagKind::String)])?;
    let platform = flags
        .string("platform")
        .map(|f| Word::new(&f.value, f.span));
    Ok(FromInstruction {
        base: Word::new(&base.value, base.span),
        name,
        platform,
    })
}

/// ENV and LABEL: argument triples (key, value, `=` or `""` for the legacy form).
fn parse_kvps(node: &Node, instruction: &'static str) -> Result<Vec<KeyValue>, Error> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(Error::AtLeastOneArgument {
            instruction,
            span: node.span,
        });
    }
    if !node.args.len().is_multiple_of(3) {
        return Err(Error::TooManyArguments {
            instruction,
            span: node.span,
        });
    }
    node.args
        .chunks(3)
        .map(|triple| {
            let [key, value, delim] = triple else {
                return Err(Error::TooManyArguments {
                    instruction,
                    span: node.span,
                });
            };
            if key.value.is_empty() {
                return Err(Error::BlankName {
                    instruction,
                    span: key.span,
                });
            }
            Ok(KeyValue {
                key: key.value.clone(),
                value: value.value.clone(),
                legacy: delim.value.is_empty(),
                span: key.span.join(value.span),
            })
        })
        .collect()
}

fn parse_arg(node: &Node) -> Result<ArgCommand, Error> {
    if node.args.is_empty() {
        return Err(Error::AtLeastOneArgument {
            instruction: "ARG",
            span: node.span,
        });
    }
    no_flags(node)?;
    let args = node
        .args
        .iter()
        .map(|arg| {
            let (name, default) = match arg.value.split_once('=') {
                Some((name, default)) => (name, Some(default.to_string())),
                None => (arg.value.as_str(), None),
            };
            if name.is_empty() {
                return Err(Error::BlankName {
                    instruction: "ARG",
                    span: arg.span,
                });
            }
            Ok(ArgDecl {
                name: name.to_string(),
                default,
                span: arg.span,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ArgCommand {
        args,
        origin: origin(node),
    })
}

/// RUN, CMD and ENTRYPOINT command lines.
fn command_line(node: &Node) -> CommandLine {
    let args = if node.json {
        values(&node.args)
    } else if node.args.is_empty() {
        Vec::new()
    } else {
        vec![values(&node.args).join(" ")]
    };
    let files = node
        .heredocs
        .iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: h.content.clone(),
            chomp: h.chomp,
            expand: h.expand,
        })
        .collect();
    CommandLine {
        args,
        prepend_shell: !node.json,
        files,
    }
}

fn parse_command_line(node: &Node) -> Result<CommandLine, Error> {
    no_flags(node)?;
    Ok(command_line(node))
}

fn parse_run(node: &Node) -> Result<RunCommand, Error> {
    let flags = parse_flags(
        &node.flags,
        &[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ],
    )?;
    let mounts = flags
        .strings("mount")
        .iter()
        .map(|f| {
            parse_mount(&f.value, f.span, None).map_err(|kind| Error::Mount { kind, span: f.span })
        })
        .collect::<Result<_, _>>()?;
    let network = flags
        .string("network")
        .map(|f| {
            parse_network(&f.value).ok_or_else(|| Error::Network {
                value: f.value.clone(),
                span: f.span,
            })
        })
        .transpose()?;
    let security = flags
        .string("security")
        .map(|f| {
            parse_security(&f.value).ok_or_else(|| Error::Security {
                value: f.value.clone(),
                span: f.span,
            })
        })
        .transpose()?;
    Ok(RunCommand {
        command: command_line(node),
        mounts,
        network,
        security,
        origin: origin(node),
    })
}

/// The heredoc name of a source word such as `<<EOF`, `<<-EOF` or `3<<"EOF"` (BuildKit's
/// `MustParseHeredoc`, provided by the parser).
fn heredoc_name(word: &str) -> Option<String> {
    crate::parser::parse_heredoc_word(word).map(|h| h.name)
}

fn sources_and_dest(node: &Node, instruction: &'static str) -> Result<SourcesAndDest, Error> {
    let (dest, srcs) = match node.args.split_last() {
        Some((dest, srcs)) if !srcs.is_empty() => (dest, srcs),
        _ => {
            return Err(Error::NoDestination {
                instruction,
                span: node.span,
            });
        }
    };
    let heredocs_allowed = !node.json;
    if heredocs_allowed && heredoc_name(&dest.value).is_some() {
        return Err(Error::HeredocDestination {
            instruction,
            span: dest.span,
        });
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        match heredoc_name(&src.value).filter(|_| heredocs_allowed) {
            Some(name) => {
                let doc = node.heredocs.iter().find(|h| h.name == name);
                contents.push(SourceContent {
                    data: doc.map(|h| h.content.clone()).unwrap_or_default(),
                    expand: doc.is_none_or(|h| h.expand),
                    path: name,
                });
            }
            None => sources.push(Word::new(&src.value, src.span)),
        }
    }
    Ok(SourcesAndDest {
        sources,
        contents,
        dest: Word::new(&dest.value, dest.span),
    })
}

fn chmod_flag(flags: &ParsedFlags) -> Result<Option<Chmod>, Error> {
    let Some(f) = flags.string("chmod") else {
        return Ok(None);
    };
    let mode = if f.value.contains('$') {
        None
    } else {
        Some(parse_chmod(&f.value).map_err(|kind| Error::Chmod {
            value: f.value.clone(),
            kind,
            span: f.span,
        })?)
    };
    Ok(Some(Chmod {
        value: Word::new(&f.value, f.span),
        mode,
    }))
}

fn word_flag(flags: &ParsedFlags, name: &str) -> Option<Word> {
    flags.string(name).map(|f| Word::new(&f.value, f.span))
}

fn words_flag(flags: &ParsedFlags, name: &str) -> Vec<Word> {
    flags
        .strings(name)
        .iter()
        .map(|f| Word::new(&f.value, f.span))
        .collect()
}

fn parse_copy(node: &Node) -> Result<CopyCommand, Error> {
    if node.args.len() < 2 {
        return Err(Error::NoDestination {
            instruction: "COPY",
            span: node.span,
        });
    }
    let flags = parse_flags(
        &node.flags,
        &[
            ("chown", FlagKind::String),
            ("from", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ],
    )?;
    Ok(CopyCommand {
        files: sources_and_dest(node, "COPY")?,
        // BuildKit treats `--from=` like no `--from`.
        from: word_flag(&flags, "from").filter(|w| !w.value.is_empty()),
        chown: word_flag(&flags, "chown"),
        chmod: chmod_flag(&flags)?,
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        exclude: words_flag(&flags, "exclude"),
        origin: origin(node),
    })
}

fn parse_add(node: &Node) -> Result<AddCommand, Error> {
    if node.args.len() < 2 {
        return Err(Error::NoDestination {
            instruction: "ADD",
            span: node.span,
        });
    }
    let flags = parse_flags(
        &node.flags,
        &[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ],
    )?;
    Ok(AddCommand {
        files: sources_and_dest(node, "ADD")?,
        chown: word_flag(&flags, "chown"),
        chmod: chmod_flag(&flags)?,
        link: flags.bool("link").unwrap_or(false),
        checksum: word_flag(&flags, "checksum"),
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        unpack: flags.bool("unpack"),
        exclude: words_flag(&flags, "exclude"),
        origin: origin(node),
    })
}

fn parse_onbuild(node: &Node) -> Result<OnbuildCommand, Error> {
    let Some(inner) = node.onbuild.as_deref() else {
        return Err(Error::OnbuildEmpty { span: node.span });
    };
    no_flags(node)?;
    let trigger = inner.keyword.to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(Error::OnbuildChain {
                span: inner.keyword_span,
            });
        }
        "FROM" | "MAINTAINER" => {
            return Err(Error::OnbuildTrigger {
                trigger,
                span: inner.keyword_span,
            });
        }
        _ => {}
    }
    // BuildKit: the original text with a leading `ONBUILD` (any case) and the whitespace after
    // it removed, then each heredoc body and its terminator appended.
    let original = node.original.trim_start();
    let mut expression = match original.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => original[7..].trim_start().to_string(),
        _ => original.to_string(),
    };
    let heredocs = if node.heredocs.is_empty() {
        &inner.heredocs
    } else {
        &node.heredocs
    };
    for h in heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(OnbuildCommand {
        trigger,
        expression,
        origin: origin(node),
    })
}

fn parse_healthcheck(node: &Node) -> Result<HealthcheckCommand, Error> {
    let Some((kind, rest)) = node.args.split_first() else {
        return Err(Error::AtLeastOneArgument {
            instruction: "HEALTHCHECK",
            span: node.span,
        });
    };
    let typ = kind.value.to_uppercase();
    let flags = parse_flags(
        &node.flags,
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )?;
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(Error::HealthcheckNoneArgs { span: node.span });
        }
        return Ok(HealthcheckCommand {
            health: Healthcheck::None,
            origin: origin(node),
        });
    }
    if typ != "CMD" {
        return Err(Error::HealthcheckType {
            kind: typ,
            span: kind.span,
        });
    }
    let args = values(rest);
    if args.is_empty() {
        return Err(Error::HealthcheckMissingCommand { span: node.span });
    }
    let mut test = vec![if node.json {
        "CMD".to_string()
    } else {
        "CMD-SHELL".to_string()
    }];
    if node.json {
        test.extend(args);
    } else {
        test.push(args.join(" "));
    }
    let duration = |flag: &'static str| -> Result<_, Error> {
        let Some(f) = flags.string(flag) else {
            return Ok(None);
        };
        if f.value.is_empty() {
            return Ok(None);
        }
        let nanos = parse_go_duration(&f.value).ok_or_else(|| Error::InvalidDuration {
            flag,
            value: f.value.clone(),
            span: f.span,
        })?;
        match nanos {
            0 => Ok(None),
            n if n < 1_000_000 => Err(Error::DurationTooShort { flag, span: f.span }),
            n => Ok(Some(nanos_to_duration(n))),
        }
    };
    let retries = match flags.string("retries") {
        Some(f) if !f.value.is_empty() => {
            let value: i32 = f.value.parse().map_err(|_| Error::InvalidRetries {
                value: f.value.clone(),
                span: f.span,
            })?;
            let value = u32::try_from(value).map_err(|_| Error::NegativeRetries {
                value: i64::from(value),
                span: f.span,
            })?;
            Some(value)
        }
        _ => None,
    };
    Ok(HealthcheckCommand {
        health: Healthcheck::Cmd {
            test,
            interval: duration("interval")?,
            timeout: duration("timeout")?,
            start_period: duration("start-period")?,
            start_interval: duration("start-interval")?,
            retries,
        },
        origin: origin(node),
    })
}

fn parse_expose(node: &Node) -> Result<ExposeCommand, Error> {
    if node.args.is_empty() {
        return Err(Error::AtLeastOneArgument {
            instruction: "EXPOSE",
            span: node.span,
        });
    }
    no_flags(node)?;
    let ports = node
        .args
        .iter()
        .map(|a| Word::new(&a.value, a.span))
        .collect();
    Ok(ExposeCommand {
        ports,
        origin: origin(node),
    })
}

fn parse_volume(node: &Node) -> Result<VolumeCommand, Error> {
    if node.args.is_empty() {
        return Err(Error::AtLeastOneArgument {
            instruction: "VOLUME",
            span: node.span,
        });
    }
    no_flags(node)?;
    let volumes = node
        .args
        .iter()
        .map(|a| {
            let v = a.value.trim();
            if v.is_empty() {
                Err(Error::EmptyVolume { span: a.span })
            } else {
                Ok(Word::new(v, a.span))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(VolumeCommand {
        volumes,
        origin: origin(node),
    })
}

fn parse_shell(node: &Node) -> Result<ShellCommand, Error> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(Error::AtLeastOneArgument {
            instruction: "SHELL",
            span: node.span,
        });
    }
    if !node.json {
        return Err(Error::NotJson {
            instruction: "SHELL",
            span: node.span,
        });
    }
    Ok(ShellCommand {
        shell: values(&node.args),
        origin: origin(node),
    })
}
