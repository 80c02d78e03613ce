//! RUN (BuildKit's `dispatchRun`, `convert_runmount.go`, `convert_secrets.go`,
//! `convert_ssh.go`): an exec op over the stage's filesystem with its env, cwd and user.

use dray_llb::{
    ExecSpec, FileAction, FileChain, Mkfile, Mount, NetMode, SecretMount, SecurityMode, Sharing,
    State,
};

use super::dispatch::{StageState, clean_abs, join_keep_slash, metadata};
use super::error::Error;
use crate::instructions::{
    CacheSharing, MountType, NetworkMode, RunCommand, SecurityMode as DfSecurity,
};
use crate::shell::Lexer;

/// Where a `--mount` reads from, resolved by the converter.
pub(super) enum MountSource {
    /// No `from`: the build context (bind) or nothing (cache, tmpfs, secret, ssh).
    Default,
    /// A stage's or an image's filesystem.
    State(State),
}

/// Whether `word` is one heredoc and nothing else (BuildKit's `MustParseHeredoc`).
fn is_lone_heredoc(word: &str) -> bool {
    let Some(rest) = word
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")
    else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    !rest.is_empty() && !rest.contains(char::is_whitespace)
}

/// The first line of a heredoc body, with `...` if there are more (`summarizeHeredoc`).
fn summarize(doc: &str) -> String {
    let doc = doc.trim().replace("\r\n", "\n");
    let mut lines = doc.split('\n');
    let first = lines.next().unwrap_or_default().to_owned();
    if lines.next().is_some() {
        first + "..."
    } else {
        first
    }
}

/// The RUN history line: `|N k=v … argv` when ARGs are declared (BuildKit's
/// `runCommandString`); values come from the environment when set there.
fn run_command_string(
    args: &[String],
    build_args: &[(String, Option<String>)],
    env: &[(String, String)],
) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in build_args {
        let v = env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| value.clone().unwrap_or_default());
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = v,
            None => pairs.push((key.clone(), v)),
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !pairs.is_empty() {
        words.push(format!("|{}", pairs.len()));
        words.extend(pairs.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    words.join(" ")
}

impl StageState {
    /// Converts one RUN. `sources[i]` is where mount `i` reads from; `context` is the build
    /// context; `proxy_env` the proxy build arguments.
    pub(super) fn run(
        &mut self,
        c: &RunCommand,
        sources: Vec<MountSource>,
        context: &State,
        proxy_env: &[String],
        lexer: &Lexer,
        file: &str,
    ) -> Result<(), Error> {
        let span = c.origin.span;
        let mut args = c.command.args.clone();
        let mut custom = c.origin.original.clone();
        let mut extra_mounts = Vec::new();
        if let Some(first) = c.command.files.first() {
            let [line] = args.as_slice() else {
                return Err(Error::InvalidRunHeredoc { args, span });
            };
            if !c.command.prepend_shell {
                return Err(Error::InvalidRunHeredoc { args, span });
            }
            if is_lone_heredoc(line) {
                let data = first.data.clone();
                if self.image.os != "windows" && data.starts_with("#!") {
                    // A script with a shebang: write it to a file and run that.
                    let script = State::scratch()
                        .file(FileChain::new().then(FileAction::Mkfile(Mkfile {
                            path: first.name.clone(),
                            mode: 0o755,
                            data: data.clone(),
                            owner: None,
                            timestamp: None,
                        })))
                        .named("[internal] preparing inline document");
                    extra_mounts.push(Mount::bind("/dev/pipes/", script).selector("/").readonly());
                    args = vec![format!("/dev/pipes/{}", first.name)];
                } else {
                    args = vec![data];
                }
                custom.push_str(&format!(" ({})", summarize(&first.data)));
            } else {
                let mut line = line.clone();
                for f in &c.command.files {
                    line.push('\n');
                    line.push_str(&f.data);
                    line.push_str(&f.name);
                }
                args = vec![line];
            }
        }
        if c.command.prepend_shell {
            args = self.with_shell(&args);
        }

        let mut spec = ExecSpec::new(args.clone()).proxy_env(proxy_env.to_vec());
        for m in extra_mounts {
            spec = spec.mount(m);
        }
        let mut ssh_index = 0;
        for (m, source) in c.mounts.iter().zip(sources) {
            let from = match source {
                MountSource::State(s) => Some(s),
                MountSource::Default => None,
            };
            let from_copy = from.clone();
            let mount = match m.kind {
                MountType::Secret if m.env.is_some() => {
                    return Err(Error::Unsupported {
                        what: "secret mounts exposed as environment variables (env=)",
                        span: m.span,
                    });
                }
                MountType::Secret => {
                    let id = m
                        .source
                        .clone()
                        .or_else(|| m.id.clone())
                        .or_else(|| m.target.as_deref().map(base_name))
                        .ok_or(Error::SecretWithoutId { span: m.span })?;
                    let target = m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{}", base_name(&id)));
                    let target = join_keep_slash(self.state.cwd(), &target);
                    Mount::secret(
                        target,
                        SecretMount {
                            id,
                            uid: m.uid.unwrap_or(0),
                            gid: m.gid.unwrap_or(0),
                            mode: m.mode.unwrap_or(0o400),
                            optional: !m.required,
                        },
                    )
                }
                MountType::Ssh => {
                    let target = m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_index}"));
                    ssh_index += 1;
                    Mount::ssh(
                        join_keep_slash(self.state.cwd(), &target),
                        SecretMount {
                            id: m.id.clone().unwrap_or_else(|| "default".to_owned()),
                            uid: m.uid.unwrap_or(0),
                            gid: m.gid.unwrap_or(0),
                            mode: m.mode.unwrap_or(0o600),
                            optional: !m.required,
                        },
                    )
                }
                MountType::Tmpfs | MountType::Bind | MountType::Cache => {
                    let target = m.target.clone().unwrap_or_default();
                    let target = clean_abs(&join_keep_slash(self.state.cwd(), &target));
                    if target == "/" {
                        return Err(Error::InvalidMountTarget {
                            target,
                            span: m.span,
                        });
                    }
                    let mut mount = match m.kind {
                        MountType::Tmpfs => Mount::tmpfs(target.clone(), m.size),
                        MountType::Cache => {
                            let sharing = match m.sharing {
                                Some(CacheSharing::Private) => Sharing::Private,
                                Some(CacheSharing::Locked) => Sharing::Locked,
                                _ => Sharing::Shared,
                            };
                            // BuildKit: the target as written, cleaned (not joined to the cwd).
                            let id = m.id.clone().unwrap_or_else(|| {
                                let written = m.target.as_deref().unwrap_or_default();
                                let cleaned = clean_abs(written);
                                if written.starts_with('/') {
                                    cleaned
                                } else {
                                    cleaned.trim_start_matches('/').to_owned()
                                }
                            });
                            let mount = Mount::cache(target.clone(), id, sharing);
                            match from.clone() {
                                Some(s) => mount.from_state(s),
                                None => mount,
                            }
                        }
                        // `rw` writes are discarded with the step (BuildKit's ForceNoOutput).
                        _ => Mount::bind(target.clone(), from.unwrap_or_else(|| context.clone()))
                            .no_output(),
                    };
                    if !matches!(m.kind, MountType::Tmpfs) {
                        let src = clean_abs(m.source.as_deref().unwrap_or_default());
                        if src != "/" {
                            mount = mount.selector(src);
                        } else if m.kind == MountType::Cache
                            && (m.uid.is_some() || m.gid.is_some() || m.mode.is_some())
                        {
                            mount = self.cache_owner(mount, m, from_copy);
                        }
                    }
                    if m.readonly {
                        mount = mount.readonly();
                    }
                    mount
                }
            };
            spec = spec.mount(mount);
        }
        if let Some(net) = c.network {
            spec = spec.network(match net {
                NetworkMode::Default => NetMode::Sandbox,
                NetworkMode::Host => NetMode::Host,
                NetworkMode::None => NetMode::None,
            });
        }
        if let Some(DfSecurity::Insecure) = c.security {
            spec = spec.security(SecurityMode::Insecure);
        }

        let raw = lexer.raw_quotes(true).skip_unset_env(true);
        let text = self.display_text(&raw, &custom);
        let name = self.prefix(&text);
        let env = self.state.env().to_vec();
        let exec =
            self.state
                .run(spec)
                .with_metadata(metadata(name, file, &c.origin, self.ignore_cache));
        self.state = exec.root();
        let line = run_command_string(&args, &self.build_args, &env);
        self.commit(format!("RUN {line}"), true, true);
        Ok(())
    }
}

impl StageState {
    /// `--mount=type=cache,uid=…,gid=…,mode=…`: BuildKit seeds the cache from a `/cache`
    /// directory made with that owner and mode on the `from` state (or scratch), and mounts
    /// that directory.
    fn cache_owner(
        &self,
        mount: Mount,
        m: &crate::instructions::Mount,
        from: Option<State>,
    ) -> Mount {
        let base = from.unwrap_or_else(State::scratch);
        let seeded = base
            .file(FileChain::new().then(FileAction::Mkdir(dray_llb::Mkdir {
                path: "/cache".to_owned(),
                mode: m.mode.unwrap_or(0o755),
                make_parents: false,
                owner: Some(dray_llb::Chown {
                    user: Some(dray_llb::UserOpt::Id(m.uid.unwrap_or(0))),
                    group: Some(dray_llb::UserOpt::Id(m.gid.unwrap_or(0))),
                }),
                timestamp: None,
            })))
            .named("[internal] settings cache mount permissions");
        mount.from_state(seeded).selector("/cache")
    }
}

/// `path.Base`.
fn base_name(p: &str) -> String {
    clean_abs(p)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines() {
        let args = vec!["/bin/sh".to_owned(), "-c".to_owned(), "make".to_owned()];
        assert_eq!(run_command_string(&args, &[], &[]), "/bin/sh -c make");
        let build_args = vec![
            ("A".to_owned(), Some("1".to_owned())),
            ("B".to_owned(), None),
            ("A".to_owned(), Some("2".to_owned())),
        ];
        let env = vec![("A".to_owned(), "2".to_owned())];
        assert_eq!(
            run_command_string(&args, &build_args, &env),
            "|2 A=2 B= /bin/sh -c make"
        );
    }

    #[test]
    fn heredoc_words() {
        assert!(is_lone_heredoc("<<EOF"));
        assert!(is_lone_heredoc("<<-EOF"));
        assert!(!is_lone_heredoc("cat <<EOF"));
        assert!(!is_lone_heredoc("<<EOF cat"));
        assert_eq!(summarize("echo a\necho b\n"), "echo a...");
        assert_eq!(summarize("echo a\n"), "echo a");
    }
}
