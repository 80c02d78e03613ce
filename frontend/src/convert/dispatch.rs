//! Per-stage state (BuildKit's `dispatchState`), progress names, history entries, and the
//! instructions that change only the image config.

use dray_llb::{
    Chown, Empty, FileAction, FileChain, HealthConfig, History, ImageConfig, Mkdir, OpMetadata,
    Platform, SourceLocation, State, UserOpt,
};

use super::error::Error;
use crate::instructions::{
    ArgCommand, CmdCommand, CommandLine, EntrypointCommand, EnvCommand, ExposeCommand, Healthcheck,
    HealthcheckCommand, LabelCommand, Origin, VolumeCommand, WorkdirCommand, parse_port,
};
use crate::shell::Lexer;
use crate::stages::{DEFAULT_PATH, NON_ENV_ARGS};

/// BuildKit's history comment for every entry it writes.
pub(super) const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// One stage while it is being converted.
#[derive(Debug, Clone)]
pub(super) struct StageState {
    /// The name in progress prefixes: the `AS` name, `stage-<n>`, or empty for a build with a
    /// single stage.
    pub(super) name: String,
    /// The filesystem so far, with env, cwd and user for later ops.
    pub(super) state: State,
    /// The image config so far (with the base's history first).
    pub(super) image: ImageConfig,
    /// The platform the stage builds for.
    pub(super) platform: Platform,
    /// Whether ops are built for a platform other than the build's default.
    pub(super) explicit_platform: bool,
    /// ARGs declared so far (inherited from a base stage), for RUN's history line.
    pub(super) build_args: Vec<(String, Option<String>)>,
    /// How many steps the progress prefix counts (`[name i/total]`); 0 means no prefix.
    pub(super) cmd_total: usize,
    /// Steps named so far.
    pub(super) cmd_index: usize,
    /// Whether the current instruction is an ONBUILD trigger.
    pub(super) cmd_is_onbuild: bool,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub(super) cmd_set: bool,
    /// `--no-cache` applies to this stage.
    pub(super) ignore_cache: bool,
    /// The image at the bottom of the stage's base chain, pinned by digest.
    pub(super) base_image: Option<dray_llb::SourceId>,
    /// `SOURCE_DATE_EPOCH`: the modification time of copied files and WORKDIR directories.
    pub(super) epoch: Option<i64>,
}

/// The config BuildKit starts `FROM scratch` with.
pub(super) fn empty_image(platform: &Platform) -> ImageConfig {
    let mut image = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..ImageConfig::default()
    };
    image.config.working_dir = Some("/".to_owned());
    if platform.os != "windows" {
        image.config.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
    }
    image
}

impl StageState {
    /// BuildKit's `prefixCommand`: `[name i/n] TEXT`, the index right-aligned to the width of
    /// the total, `ONBUILD ` before trigger text. Each call takes the next index.
    pub(super) fn prefix(&mut self, text: &str) -> String {
        if self.cmd_total == 0 {
            return text.to_owned();
        }
        self.cmd_index += 1;
        let width = self.cmd_total.to_string().len();
        let mut out = String::from("[");
        if !self.name.is_empty() {
            out.push_str(&self.name);
            out.push(' ');
        }
        out.push_str(&format!(
            "{:>width$}/{}] ",
            self.cmd_index,
            self.cmd_total,
            width = width
        ));
        if self.cmd_is_onbuild {
            out.push_str("ONBUILD ");
        }
        out + text
    }

    /// Appends a history entry; `layer` entries made by an op get BuildKit's ` # buildkit`.
    pub(super) fn commit(&mut self, created_by: String, layer: bool, by_op: bool) {
        let created_by = if by_op {
            created_by + " # buildkit"
        } else {
            created_by
        };
        self.image.history.push(History {
            created: None,
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.to_owned()),
            empty_layer: !layer,
        });
    }

    /// The platform to stamp on new nodes: `None` for the build's default.
    pub(super) fn node_platform(&self) -> Option<Platform> {
        self.explicit_platform.then(|| self.platform.clone())
    }

    /// Sets a config env entry in place, or appends it (BuildKit's `addEnv`).
    pub(super) fn add_config_env(&mut self, key: &str, value: &str) {
        let env = self.image.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// The shell for shell-form commands: `SHELL`, else `/bin/sh -c`.
    pub(super) fn shell(&self) -> Vec<String> {
        match &self.image.config.shell {
            Some(shell) if !shell.is_empty() => shell.clone(),
            _ if self.image.os == "windows" => vec!["cmd".into(), "/S".into(), "/C".into()],
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// BuildKit's `withShell`: the shell plus the words joined by spaces.
    pub(super) fn with_shell(&self, args: &[String]) -> Vec<String> {
        let mut out = self.shell();
        out.push(args.join(" "));
        out
    }

    /// The argv of a CMD/ENTRYPOINT/RUN command line.
    pub(super) fn argv(&self, line: &CommandLine) -> Vec<String> {
        if line.prepend_shell {
            self.with_shell(&line.args)
        } else {
            line.args.clone()
        }
    }

    /// The progress name of an instruction: its text with variables expanded (BuildKit's
    /// `processCmdEnv`, falling back to the text) and the keyword uppercased.
    pub(super) fn display_text(&self, lexer: &Lexer, original: &str) -> String {
        let env = self.state.env().to_vec();
        let text = lexer
            .process_word(original, &env)
            .unwrap_or_else(|_| original.to_owned());
        match text.split_once(' ') {
            Some((kw, rest)) => format!("{} {rest}", kw.to_uppercase()),
            None => text.to_uppercase(),
        }
    }
}

/// Metadata for a node made by an instruction.
pub(super) fn metadata(
    name: String,
    file: &str,
    origin: &Origin,
    ignore_cache: bool,
) -> OpMetadata {
    let mut m = OpMetadata::named(name);
    m.ignore_cache = ignore_cache;
    m.source_location = Some(SourceLocation {
        file: file.to_owned(),
        start_line: u32::try_from(origin.start_line).unwrap_or(u32::MAX),
        end_line: u32::try_from(origin.end_line).unwrap_or(u32::MAX),
    });
    m
}

/// `--chown` / `USER` text to an owner: `user[:group]`, each by id or by name.
pub(super) fn chown(spec: &str) -> Chown {
    let opt = |s: &str| -> Option<UserOpt> {
        if s.is_empty() {
            None
        } else if let Ok(id) = s.parse::<u32>() {
            Some(UserOpt::Id(id))
        } else {
            Some(UserOpt::Name(s.to_owned()))
        }
    };
    match spec.split_once(':') {
        Some((user, group)) => Chown {
            user: opt(user),
            group: opt(group),
        },
        None => Chown {
            user: opt(spec),
            group: None,
        },
    }
}

/// Lexical `path.Clean` of an absolute path (no trailing slash except for `/`).
pub(super) fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Joins `path` to the absolute `base` unless it is absolute, cleans it, and keeps a trailing
/// `/` (it means "into a directory" for a copy destination).
pub(super) fn join_keep_slash(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    let mut out = clean_abs(&joined);
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

impl StageState {
    pub(super) fn env(&mut self, c: &EnvCommand) {
        let mut msg = String::from("ENV");
        for kv in &c.env {
            msg.push_str(&format!(" {}={}", kv.key, kv.value));
            self.state = self.state.clone().with_env(&kv.key, &kv.value);
            self.add_config_env(&kv.key, &kv.value);
        }
        self.commit(msg, false, false);
    }

    pub(super) fn arg(&mut self, c: &ArgCommand) {
        // The stage walker has already resolved each value: build argument, else the expanded
        // default, else the global value.
        let mut parts = Vec::new();
        for decl in &c.args {
            if let Some(v) = &decl.default {
                if !NON_ENV_ARGS.contains(&decl.name.as_str()) {
                    self.state = self.state.clone().with_env(&decl.name, v);
                }
                parts.push(format!("{}={v}", decl.name));
            } else {
                parts.push(decl.name.clone());
            }
            self.build_args
                .push((decl.name.clone(), decl.default.clone()));
        }
        self.commit(format!("ARG {}", parts.join(" ")), false, false);
    }

    pub(super) fn label(&mut self, c: &LabelCommand) {
        let labels = self
            .image
            .config
            .labels
            .get_or_insert_with(Default::default);
        let mut msg = String::from("LABEL");
        for kv in &c.labels {
            labels.insert(kv.key.clone(), kv.value.clone());
            msg.push_str(&format!(" {}={}", kv.key, kv.value));
        }
        self.commit(msg, false, false);
    }

    pub(super) fn user(&mut self, user: &str) {
        self.state = self.state.clone().with_user(user);
        self.image.config.user = Some(user.to_owned());
        self.commit(format!("USER {user}"), false, false);
    }

    /// WORKDIR: the config and cwd always; a `mkdir -p` (0755, owned by the current USER) as
    /// a file op unless the directory is `/`.
    pub(super) fn workdir(&mut self, c: &WorkdirCommand, lexer: &Lexer, file: &str) {
        let current = self.image.config.working_dir.as_deref().unwrap_or("/");
        let wd = clean_abs(&join_keep_slash(current, &c.path.value));
        self.image.config.working_dir = Some(wd.clone());
        self.state = self.state.clone().with_cwd(&wd);
        let layer = wd != "/";
        if layer {
            let owner = self
                .image
                .config
                .user
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(chown);
            let text = self.display_text(lexer, &c.origin.original);
            let name = self.prefix(&text);
            let chain = FileChain::new().then(FileAction::Mkdir(Mkdir {
                path: wd.clone(),
                mode: 0o755,
                make_parents: true,
                owner,
                timestamp: self.epoch,
            }));
            self.state = self.state.file(chain).with_metadata(metadata(
                name,
                file,
                &c.origin,
                self.ignore_cache,
            ));
        }
        self.commit(format!("WORKDIR {wd}"), layer, false);
    }

    pub(super) fn expose(&mut self, c: &ExposeCommand) {
        let mut keys = Vec::new();
        for port in &c.ports {
            // Checked when the stage was expanded.
            if let Ok(spec) = parse_port(&port.value) {
                keys.extend(spec.config_keys());
            }
        }
        let ports = self
            .image
            .config
            .exposed_ports
            .get_or_insert_with(Default::default);
        for k in &keys {
            ports.insert(k.clone(), Empty {});
        }
        self.commit(format!("EXPOSE [{}]", keys.join(" ")), false, false);
    }

    pub(super) fn volume(&mut self, c: &VolumeCommand) -> Result<(), Error> {
        let volumes = self
            .image
            .config
            .volumes
            .get_or_insert_with(Default::default);
        for v in &c.volumes {
            if v.value.is_empty() {
                return Err(Error::EmptyVolume {
                    span: c.origin.span,
                });
            }
            volumes.insert(v.value.clone(), Empty {});
        }
        let list: Vec<&str> = c.volumes.iter().map(|v| v.value.as_str()).collect();
        self.commit(format!("VOLUME [{}]", list.join(" ")), false, false);
        Ok(())
    }

    pub(super) fn cmd(&mut self, c: &CmdCommand) {
        let args = self.argv(&c.command);
        self.cmd_set = true;
        self.commit(format!("CMD {}", go_quote_list(&args)), false, false);
        self.image.config.cmd = (!args.is_empty()).then_some(args);
        self.image.config.args_escaped = Some(true);
    }

    pub(super) fn entrypoint(&mut self, c: &EntrypointCommand) {
        let args = self.argv(&c.command);
        self.commit(format!("ENTRYPOINT {}", go_quote_list(&args)), false, false);
        self.image.config.entrypoint = (!args.is_empty()).then_some(args);
        if !self.cmd_set {
            self.image.config.cmd = None;
        }
    }

    pub(super) fn healthcheck(&mut self, c: &HealthcheckCommand) {
        let nanos = |d: &Option<std::time::Duration>| {
            d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        };
        let health = match &c.health {
            Healthcheck::None => HealthConfig {
                test: vec!["NONE".to_owned()],
                ..HealthConfig::default()
            },
            Healthcheck::Cmd {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => HealthConfig {
                test: test.clone(),
                interval: nanos(interval),
                timeout: nanos(timeout),
                start_period: nanos(start_period),
                start_interval: nanos(start_interval),
                retries: retries.map_or(0, i64::from),
            },
        };
        // Go's `%+v` of the struct, durations in `time.Duration` notation.
        let msg = format!(
            "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
            health.test.join(" "),
            go_duration(health.interval),
            go_duration(health.timeout),
            go_duration(health.start_period),
            go_duration(health.start_interval),
            health.retries
        );
        self.image.config.healthcheck = Some(health);
        self.commit(msg, false, false);
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(super) fn go_quote_list(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| go_quote(a)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.Quote` for printable text: `"`, `\` and control characters escaped.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()` for a non-negative number of nanoseconds.
pub(super) fn go_duration(nanos: i64) -> String {
    let d = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if d == 0 {
        return "0s".to_owned();
    }
    if d < 1_000_000_000 {
        let (unit, div) = match d {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", decimal(d, div));
    }
    let secs = d / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&decimal(
        s * 1_000_000_000 + d % 1_000_000_000,
        1_000_000_000,
    ));
    out.push('s');
    out
}

/// `value / div` with the fraction's trailing zeros trimmed (`1500, 1000` → `1.5`).
fn decimal(value: u64, div: u64) -> String {
    let (int, frac) = (value / div, value % div);
    if frac == 0 {
        return int.to_string();
    }
    let digits = div.to_string().len() - 1;
    let frac = format!("{frac:0digits$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (ns, want) in [
            (0, "0s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (1_500_000, "1.5ms"),
            (2_000, "2µs"),
            (7, "7ns"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote_list(&["cat".into(), "/x".into()]),
            r#"["cat" "/x"]"#
        );
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }

    #[test]
    fn prefixes_pad_the_index() {
        let mut st = StageState {
            name: "build".into(),
            state: State::scratch(),
            image: ImageConfig::default(),
            platform: Platform::linux("amd64"),
            explicit_platform: false,
            build_args: Vec::new(),
            cmd_total: 12,
            cmd_index: 1,
            cmd_is_onbuild: false,
            cmd_set: false,
            ignore_cache: false,
            base_image: None,
            epoch: None,
        };
        assert_eq!(st.prefix("RUN x"), "[build  2/12] RUN x");
        st.name.clear();
        st.cmd_is_onbuild = true;
        assert_eq!(st.prefix("RUN y"), "[ 3/12] ONBUILD RUN y");
        st.cmd_total = 0;
        assert_eq!(st.prefix("RUN z"), "RUN z");
    }

    #[test]
    fn chown_specs() {
        assert_eq!(
            chown("app:1000"),
            Chown {
                user: Some(UserOpt::Name("app".into())),
                group: Some(UserOpt::Id(1000)),
            }
        );
        assert_eq!(
            chown("10"),
            Chown {
                user: Some(UserOpt::Id(10)),
                group: None,
            }
        );
    }
}
