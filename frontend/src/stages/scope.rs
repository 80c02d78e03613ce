//! The per-stage walk: the environment in effect at each instruction, and the expansion of the
//! instructions BuildKit expands.
//!
//! BuildKit keeps one environment per stage (the LLB state's env): the base image's `Env`
//! (plus a default `PATH`), then every ARG that has a value and every ENV, in order, a later
//! definition replacing an earlier one. So `ENV` after `ARG` of the same name wins, as the
//! Dockerfile reference says. Variables are expanded against that environment *as it was
//! before the instruction*, so `ENV a=x b=$a` gives `b` the previous `a` ("one value per
//! variable per instruction"). ARG is the exception: each `name=default` of one ARG line sees
//! the ones before it.
//!
//! What is expanded (BuildKit's `Expand` implementations):
//!
//! | instruction | expanded |
//! | --- | --- |
//! | ADD, COPY | sources, destination, `--chown`, `--chmod`, `--checksum` (ADD), `--exclude`; heredoc bodies with an unquoted delimiter (quotes kept) |
//! | ENV, LABEL | keys and values (quote removal happens here) |
//! | EXPOSE | each word, which may split into several ports |
//! | STOPSIGNAL, USER, WORKDIR, VOLUME | their words |
//! | RUN | `--mount` values except `from` |
//! | ARG | defaults, unless a build argument gives the value |
//! | FROM | base and `--platform`, with the global scope only (see [`super::resolve`]) |
//!
//! Not expanded: `COPY --from` (an error if it contains a variable), RUN/CMD/ENTRYPOINT/
//! HEALTHCHECK/SHELL command lines (the shell does that at run time), ONBUILD triggers (they are
//! expanded when they run in the child build), MAINTAINER.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::instructions::{
    self, AddCommand, ArgCommand, Chmod, Command, CopyCommand, EnvCommand, ExposeCommand, KeyValue,
    LabelCommand, MountError, Origin, RunCommand, SourcesAndDest, StopSignalCommand, UserCommand,
    VolumeCommand, Word, WorkdirCommand, parse_chmod, parse_mount, parse_port, parse_signal,
};
use crate::shell::{self, Lexer};
use crate::span::Span;

use super::error::Error;

/// The `PATH` BuildKit sets when a Linux base image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// ARGs that configure BuildKit itself and never enter the environment.
pub const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Build arguments and the global scope shared by every stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GlobalArgs {
    /// `--build-arg` values as given.
    pub build_args: BTreeMap<String, String>,
    /// The global scope: the predefined platform ARGs, then the ARGs before the first FROM that
    /// have a value (a build argument replacing the default).
    pub values: BTreeMap<String, String>,
}

/// An ARG as declared in a stage, with the value it resolved to (BuildKit's `buildArgs`). The
/// converter prefixes RUN's history entry with these (`|2 a=1 b=2 /bin/sh -c …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredArg {
    /// The name.
    pub name: String,
    /// The value; `None` for a declaration without default, build argument or global value.
    pub value: Option<String>,
}

/// The environment of one stage while walking its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageScope<'a> {
    lexer: Lexer,
    globals: &'a GlobalArgs,
    env: Vec<(String, String)>,
    config_env: Vec<(String, String)>,
    args: Vec<DeclaredArg>,
}

fn set(list: &mut Vec<(String, String)>, key: &str, value: &str) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => list.push((key.to_string(), value.to_string())),
    }
}

impl<'a> StageScope<'a> {
    /// A scope for a stage based on an image (or scratch) whose config has `base_env`. A Linux
    /// stage without `PATH` gets [`DEFAULT_PATH`], as in BuildKit.
    pub fn new(
        lexer: Lexer,
        globals: &'a GlobalArgs,
        base_env: &[(String, String)],
        os: &str,
    ) -> Self {
        let mut env = base_env.to_vec();
        if os != "windows" && !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".to_string(), DEFAULT_PATH.to_string()));
        }
        StageScope {
            lexer,
            globals,
            config_env: env.clone(),
            env,
            args: Vec::new(),
        }
    }

    /// The environment seen by expansion and by RUN: base image env, ARGs with a value, ENV.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The environment that goes into the image config: base image env and ENV only.
    pub fn config_env(&self) -> &[(String, String)] {
        &self.config_env
    }

    /// The ARGs declared so far (a stage based on another stage starts with its parent's).
    pub fn args(&self) -> &[DeclaredArg] {
        &self.args
    }

    fn word(&self, word: &str, origin: &Origin) -> Result<String, Error> {
        self.lexer
            .process_word(word, &self.env)
            .map_err(|source| Error::Expansion {
                word: word.to_string(),
                source,
                span: origin.span,
            })
    }

    fn opt_word(&self, word: &Option<Word>, origin: &Origin) -> Result<Option<Word>, Error> {
        word.as_ref()
            .map(|w| Ok(Word::new(self.word(&w.value, origin)?, w.span)))
            .transpose()
    }

    fn words(&self, words: &[Word], origin: &Origin) -> Result<Vec<Word>, Error> {
        words
            .iter()
            .map(|w| Ok(Word::new(self.word(&w.value, origin)?, w.span)))
            .collect()
    }

    fn kvps(&self, kvps: &[KeyValue], origin: &Origin) -> Result<Vec<KeyValue>, Error> {
        kvps.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key, origin)?,
                    value: self.word(&kv.value, origin)?,
                    legacy: kv.legacy,
                    span: kv.span,
                })
            })
            .collect()
    }

    fn files(&self, files: &SourcesAndDest, origin: &Origin) -> Result<SourcesAndDest, Error> {
        // Heredoc bodies are expanded without quote processing and with `\` as escape.
        let raw = Lexer::new('\\').skip_process_quotes(true);
        let contents = files
            .contents
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if c.expand {
                    c.data = raw.process_word(&c.data, &self.env).map_err(|source| {
                        Error::Expansion {
                            word: c.data.clone(),
                            source,
                            span: origin.span,
                        }
                    })?;
                }
                Ok(c)
            })
            .collect::<Result<_, Error>>()?;
        Ok(SourcesAndDest {
            sources: self.words(&files.sources, origin)?,
            contents,
            dest: Word::new(self.word(&files.dest.value, origin)?, files.dest.span),
        })
    }

    fn chmod(&self, chmod: &Option<Chmod>, origin: &Origin) -> Result<Option<Chmod>, Error> {
        let Some(chmod) = chmod else { return Ok(None) };
        let value = self.word(&chmod.value.value, origin)?;
        let mode = parse_chmod(&value).map_err(|kind| instructions::Error::Chmod {
            value: value.clone(),
            kind,
            span: chmod.value.span,
        })?;
        Ok(Some(Chmod {
            value: Word::new(value, chmod.value.span),
            mode: Some(mode),
        }))
    }

    /// Expands `command` with the environment as it is now, then applies its effect (ARG and
    /// ENV change the environment). Returns the expanded command.
    pub fn apply(&mut self, command: &Command) -> Result<Command, Error> {
        let expanded = match command {
            Command::Arg(c) => Command::Arg(self.apply_arg(c)?),
            Command::Env(c) => {
                let env = self.kvps(&c.env, &c.origin)?;
                for kv in &env {
                    set(&mut self.env, &kv.key, &kv.value);
                    set(&mut self.config_env, &kv.key, &kv.value);
                }
                Command::Env(EnvCommand {
                    origin: c.origin.clone(),
                    env,
                })
            }
            Command::Label(c) => Command::Label(LabelCommand {
                origin: c.origin.clone(),
                labels: self.kvps(&c.labels, &c.origin)?,
            }),
            Command::Copy(c) => Command::Copy(self.expand_copy(c)?),
            Command::Add(c) => Command::Add(AddCommand {
                origin: c.origin.clone(),
                files: self.files(&c.files, &c.origin)?,
                chown: self.opt_word(&c.chown, &c.origin)?,
                chmod: self.chmod(&c.chmod, &c.origin)?,
                link: c.link,
                checksum: self.opt_word(&c.checksum, &c.origin)?,
                keep_git_dir: c.keep_git_dir,
                unpack: c.unpack,
                exclude: self.words(&c.exclude, &c.origin)?,
            }),
            Command::Expose(c) => Command::Expose(self.expand_expose(c)?),
            Command::StopSignal(c) => {
                let signal = self.word(&c.signal.value, &c.origin)?;
                if parse_signal(&signal).is_none() {
                    return Err(instructions::Error::Signal {
                        value: signal,
                        span: c.signal.span,
                    }
                    .into());
                }
                Command::StopSignal(StopSignalCommand {
                    origin: c.origin.clone(),
                    signal: Word::new(signal, c.signal.span),
                })
            }
            Command::User(c) => Command::User(UserCommand {
                origin: c.origin.clone(),
                user: Word::new(self.word(&c.user.value, &c.origin)?, c.user.span),
            }),
            Command::Workdir(c) => Command::Workdir(WorkdirCommand {
                origin: c.origin.clone(),
                path: Word::new(self.word(&c.path.value, &c.origin)?, c.path.span),
            }),
            Command::Volume(c) => Command::Volume(VolumeCommand {
                origin: c.origin.clone(),
                volumes: self.words(&c.volumes, &c.origin)?,
            }),
            Command::Run(c) => Command::Run(self.expand_run(c)?),
            Command::Cmd(_)
            | Command::Entrypoint(_)
            | Command::Healthcheck(_)
            | Command::Maintainer(_)
            | Command::Onbuild(_)
            | Command::Shell(_) => command.clone(),
        };
        Ok(expanded)
    }

    fn apply_arg(&mut self, c: &ArgCommand) -> Result<ArgCommand, Error> {
        let mut out = c.clone();
        for decl in &mut out.args {
            let value = if let Some(v) = self.globals.build_args.get(&decl.name) {
                Some(v.clone())
            } else if let Some(default) = &decl.default {
                Some(self.word(default, &c.origin)?)
            } else {
                self.globals.values.get(&decl.name).cloned()
            };
            if let Some(v) = value
                .as_ref()
                .filter(|_| !NON_ENV_ARGS.contains(&decl.name.as_str()))
            {
                set(&mut self.env, &decl.name, v);
            }
            self.args.retain(|a| a.name != decl.name);
            self.args.push(DeclaredArg {
                name: decl.name.clone(),
                value: value.clone(),
            });
            decl.default = value;
        }
        Ok(out)
    }

    fn expand_copy(&self, c: &CopyCommand) -> Result<CopyCommand, Error> {
        if let Some(from) = &c.from {
            let empty: Vec<(String, String)> = Vec::new();
            let processed = self.lexer.process_word(&from.value, &empty);
            if processed.as_deref() != Ok(from.value.as_str()) {
                return Err(Error::CopyFromVariable { span: from.span });
            }
        }
        Ok(CopyCommand {
            origin: c.origin.clone(),
            files: self.files(&c.files, &c.origin)?,
            from: c.from.clone(),
            chown: self.opt_word(&c.chown, &c.origin)?,
            chmod: self.chmod(&c.chmod, &c.origin)?,
            link: c.link,
            parents: c.parents,
            exclude: self.words(&c.exclude, &c.origin)?,
        })
    }

    fn expand_expose(&self, c: &ExposeCommand) -> Result<ExposeCommand, Error> {
        let mut ports = Vec::new();
        for word in &c.ports {
            let split = self
                .lexer
                .process_words(&word.value, &self.env)
                .map_err(|source| Error::Expansion {
                    word: word.value.clone(),
                    source,
                    span: c.origin.span,
                })?;
            for port in split {
                parse_port(&port).map_err(|kind| instructions::Error::Port {
                    value: port.clone(),
                    kind,
                    span: word.span,
                })?;
                ports.push(Word::new(port, word.span));
            }
        }
        Ok(ExposeCommand {
            origin: c.origin.clone(),
            ports,
        })
    }

    fn expand_run(&self, c: &RunCommand) -> Result<RunCommand, Error> {
        let mut out = c.clone();
        for mount in &mut out.mounts {
            let mut failure: Option<(String, shell::Error)> = None;
            let mut expand = |value: &str| -> Result<String, MountError> {
                self.lexer.process_word(value, &self.env).map_err(|e| {
                    failure = Some((value.to_string(), e));
                    MountError::Csv {
                        reason: "variable expansion failed".to_string(),
                    }
                })
            };
            let parsed = parse_mount(&mount.raw, mount.span, Some(&mut expand));
            if let Some((word, source)) = failure {
                return Err(Error::Expansion {
                    word,
                    source,
                    span: c.origin.span,
                });
            }
            *mount = parsed.map_err(|kind| instructions::Error::Mount {
                kind,
                span: mount.span,
            })?;
        }
        Ok(out)
    }
}

/// The span of a stage-level problem that has no better place.
pub(crate) fn file_start() -> Span {
    Span::point(0)
}
