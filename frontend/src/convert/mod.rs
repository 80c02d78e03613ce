//! The converter: typed stages → an op graph ([`dray_llb::Definition`]) plus the image config,
//! as BuildKit's `dockerfile2llb`.
//!
//! [`convert`] resolves the stage graph with the base images' environment (through an
//! [`ImageResolver`]), then walks the reachable stages in dependency order. Each stage starts
//! from its base — an image pinned by manifest digest, scratch, or an earlier stage's final
//! state *and* config — and every instruction either adds an op or edits the config:
//!
//! | instruction | op | image config / history |
//! |---|---|---|
//! | `FROM image` | source `docker-image://…@sha256:…` (named `[s 1/n] FROM …`); an image without layers is scratch | the base config (history kept first); env, `WorkingDir`, `User` seed the state; `PATH` added when missing |
//! | `FROM oci-layout://PATH[:TAG\|@DIGEST]`, or a named context | source `oci-layout://<abs path>#sha256:…` (pinned to the manifest digest; named `FROM oci-layout://<abs path>@sha256:…`) | as for an image |
//! | `FROM scratch` | source `scratch://` | `Env=[PATH=…]`, `WorkingDir=/` |
//! | `FROM stage` | that stage's state | that stage's config, its `OnBuild` dropped; its ONBUILD triggers run first |
//! | `RUN` | exec: `[shell…, "cmd"]` for shell form (SHELL, default `/bin/sh -c`), stage env, cwd, user, mounts, network, security; proxy args beside the env | `RUN [|N a=1 …] argv # buildkit` |
//! | `COPY`/`ADD` | file op, one copy action per source (context, `--from` stage or image, URL download, heredoc `Mkfile` on scratch); `--link`: copy onto scratch, then merge | `COPY [--parents] [--chown=…] [--chmod=…] srcs… dest # buildkit` |
//! | `WORKDIR` | file op `mkdir -p` 0755 owned by the current USER (none for `/`) | `WorkingDir`; `WORKDIR /abs` |
//! | `ENV` | — (state env) | `Env`; `ENV k=v …` (empty layer) |
//! | `ARG` | — (state env when it has a value) | `ARG k=v …` (empty layer) |
//! | `LABEL` | — | `Labels`; `LABEL k=v …` |
//! | `USER` | — (state user) | `User`; `USER u` |
//! | `EXPOSE` | — | `ExposedPorts`; `EXPOSE [80/tcp …]` |
//! | `VOLUME` | — | `Volumes`; `VOLUME [/a …]` |
//! | `CMD` | — | `Cmd`, `ArgsEscaped=true`; `CMD ["a" "b"]` |
//! | `ENTRYPOINT` | — | `Entrypoint`; `Cmd` reset unless CMD was set earlier in the stage; `ENTRYPOINT [...]` |
//! | `SHELL` | — | `Shell`; `SHELL [/bin/bash -c]` |
//! | `STOPSIGNAL` | — | `StopSignal`; `STOPSIGNAL SIGTERM` |
//! | `HEALTHCHECK` | — | `Healthcheck` (durations in ns, `["CMD-SHELL", cmd]`, `["NONE"]`); `HEALTHCHECK {Test:[…] Interval:30s …}` |
//! | `ONBUILD` | — | `OnBuild` gets the trigger text; no history entry |
//! | `MAINTAINER` | — | `author`; `MAINTAINER x` |
//!
//! Ops are named like BuildKit's progress: `[build 2/5] COPY greet.sh ./`, `stage-N` for
//! unnamed stages, no name for single-stage builds (`[2/3] RUN make`). The total counts the
//! FROM of an image, every RUN, COPY, ADD and WORKDIR, and every ONBUILD trigger. Each op
//! carries its source lines and `--no-cache`.
//!
//! `created` fields and `rootfs` are left empty: image assembly fills them.
//!
//! # Differences from BuildKit
//!
//! On purpose or for now:
//!
//! - Base images come from an [`ImageResolver`] (dray's local store); nothing is pulled.
//! - Ops carry a platform only when it differs from the target platform (`None` is the build
//!   default); progress names never carry a platform prefix (no multi-platform builds yet).
//! - `ADD <git url>`, `RUN --mount=type=secret,env=…`, `RUN --device`, ulimits, extra hosts
//!   and cgroup parent are refused or absent.
//! - Named build contexts ([`NamedContext`]) replace images, never stages (BuildKit lets
//!   `--build-context NAME` replace a stage named `NAME`); a local-directory context can be
//!   copied from but not built on.
//! - A writable bind mount (`rw`) is writable but not an output of the exec node, as
//!   BuildKit's `ForceNoOutput`: its writes are discarded with the step.
//! - `COPY --parents` is encoded as BuildKit encodes it (the part before `/./` as the copy
//!   source, the rest as an include pattern); BuildKit's "required paths" check for literal
//!   sources is left to the copy itself.
//! - A shared node (the same `FROM` in two stages) is named after its first use from the head.
//! - The stage env of a stage built `FROM` another stage is the parent's final env; BuildKit
//!   re-applies the parent's *config* env on top, which differs only when an ARG and an ENV of
//!   the same name disagree.
//!
//! Start reading at [`convert`] (or [`convert_source`]); the instruction handlers live in
//! `dispatch` (config-only instructions and WORKDIR), `copy` (COPY/ADD), `run` (RUN),
//! `triggers` (image ONBUILD) and `images` (the resolver and its memo).

mod copy;
mod dispatch;
mod error;
mod images;
mod run;
mod triggers;

use std::collections::BTreeMap;

use dray_llb::{Definition, ImageConfig, LocalAttrs, Platform, SourceId, SourceOp, State, marshal};

pub use error::{Error, ResolveError};
pub use images::{
    ImageResolver, NamedContext, NoImages, OCI_LAYOUT_SCHEME, ResolvedImage, ResolvedLayout,
};

use crate::instructions::{Command, Dockerfile, MountType};
use crate::shell::Lexer;
use crate::stages::{self, Base, ResolveOptions, ResolvedStage, StageGraph};

use copy::{CopySpec, is_remote};
use dispatch::{StageState, empty_image, metadata};
use images::{ImageSource, Memo, llb_platform, split_env};
use run::MountSource;

/// Everything a conversion depends on besides the Dockerfile and the images.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Build arguments, `--target` and platforms.
    pub resolve: ResolveOptions,
    /// The `.dockerignore` patterns, excluded from the build context.
    pub dockerignore: Vec<String>,
    /// `--label k=v`: added to the target's labels, over the Dockerfile's.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: never reuse a cached result.
    pub no_cache: bool,
    /// `--no-cache-filter`: stage names whose ops ignore the cache (with `no_cache` unset).
    pub no_cache_filter: Vec<String>,
    /// The Dockerfile's name for source locations (`Dockerfile`).
    pub filename: String,
    /// `--build-context NAME=…`: what `FROM NAME` and `COPY --from=NAME` mean instead of an
    /// image of that name (see [`NamedContext`]). A stage of that name still wins.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            resolve: ResolveOptions::default(),
            dockerignore: Vec::new(),
            labels: BTreeMap::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            filename: "Dockerfile".to_owned(),
            named_contexts: BTreeMap::new(),
        }
    }
}

/// The result for the target stage.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The op graph; its head is the target stage's final filesystem.
    pub definition: Definition,
    /// The image config (no `created`, no `rootfs`: image assembly adds them).
    pub image: ImageConfig,
    /// The target's final state (for callers that extend the graph).
    pub state: State,
    /// The image at the bottom of the target's base chain, pinned by manifest digest (a
    /// `docker-image://…@sha256:…` source, or an `oci-layout://` one whose reference is the
    /// manifest digest); its layers are the first layers of the result. `None` for a
    /// scratch-based target.
    pub base_image: Option<SourceId>,
    /// The stage graph, with every instruction expanded.
    pub stages: StageGraph,
    /// The context paths the build reads (BuildKit's follow paths); empty means all.
    pub context_paths: Vec<String>,
    /// `SOURCE_DATE_EPOCH` (a build argument, or a global ARG default), in seconds: copied
    /// files and WORKDIR directories carry it as their mtime; image assembly should use it for
    /// `created`.
    pub epoch: Option<i64>,
}

/// Converts `dockerfile` for `opts`, looking base images up in `images`.
///
/// ```
/// use dray_frontend::convert::{convert, ConvertOptions, NoImages};
///
/// let df = dray_frontend::load(b"FROM scratch\nCOPY a /a\n", &Default::default())?.dockerfile;
/// let out = convert(&df, &ConvertOptions::default(), &NoImages)?;
/// assert_eq!(out.definition.nodes.len(), 3); // scratch, context, copy
/// assert_eq!(out.image.config.working_dir.as_deref(), Some("/"));
/// # Ok::<(), dray_frontend::Error>(())
/// ```
pub fn convert(
    dockerfile: &Dockerfile,
    opts: &ConvertOptions,
    images: &dyn ImageResolver,
) -> Result<Conversion, crate::Error> {
    let memo = Memo::new(images, &opts.named_contexts);
    // BuildKit decides this before image ONBUILD triggers add their sources.
    let single = dockerfile.stages.len() + unregistered_sources(dockerfile) == 1;
    let graph = stages::resolve_with_images(dockerfile, &opts.resolve, &memo)?;
    let injected = triggers::inject(dockerfile, &graph, &memo)?;
    let (dockerfile, graph) = match &injected {
        Some(with) => (
            &with.dockerfile,
            stages::resolve_with_images(&with.dockerfile, &opts.resolve, &memo)?,
        ),
        None => (dockerfile, graph),
    };
    let image_triggers = injected.as_ref().map(|i| i.counts.clone());
    let out = Converter::new(dockerfile, &graph, opts, &memo, image_triggers, single)?.run()?;
    Ok(Conversion {
        stages: graph,
        ..out
    })
}

/// Parses `source` and converts it: [`crate::load`]'s parsing followed by [`convert`].
pub fn convert_source(
    source: &[u8],
    opts: &ConvertOptions,
    images: &dyn ImageResolver,
) -> Result<Conversion, crate::Error> {
    let ast = crate::parser::parse(source)?;
    let dockerfile = crate::instructions::parse(&ast)?;
    convert(&dockerfile, opts, images)
}

struct Converter<'a> {
    df: &'a Dockerfile,
    graph: &'a StageGraph,
    opts: &'a ConvertOptions,
    memo: &'a Memo<'a>,
    lexer: Lexer,
    context: State,
    context_paths: Vec<String>,
    proxy_env: Vec<String>,
    target_platform: Platform,
    single: bool,
    epoch: Option<i64>,
    image_triggers: Vec<usize>,
    done: Vec<Option<StageState>>,
}

impl<'a> Converter<'a> {
    fn new(
        df: &'a Dockerfile,
        graph: &'a StageGraph,
        opts: &'a ConvertOptions,
        memo: &'a Memo<'a>,
        image_triggers: Option<Vec<usize>>,
        single: bool,
    ) -> Result<Self, Error> {
        let context_paths = context_paths(graph);
        let context = State::local(
            "context",
            LocalAttrs {
                include_patterns: Vec::new(),
                exclude_patterns: opts.dockerignore.clone(),
                follow_paths: context_paths.clone(),
            },
        )
        .named("[internal] load build context");
        Ok(Self {
            df,
            graph,
            opts,
            memo,
            lexer: Lexer::new(graph.escape),
            context,
            context_paths,
            proxy_env: graph
                .proxy_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            target_platform: llb_platform(&opts.resolve.target_platform),
            single,
            epoch: source_date_epoch(opts, graph)?,
            image_triggers: image_triggers.unwrap_or_else(|| vec![0; df.stages.len()]),
            done: vec![None; df.stages.len()],
        })
    }

    fn run(mut self) -> Result<Conversion, crate::Error> {
        for rs in &self.graph.stages {
            let st = self.dispatch_stage(rs)?;
            if let Some(slot) = self.done.get_mut(rs.index) {
                *slot = Some(st);
            }
        }
        let span = self
            .df
            .stages
            .get(self.graph.target)
            .map_or(crate::Span::point(0), |s| s.span());
        let target = self
            .done
            .get_mut(self.graph.target)
            .and_then(Option::take)
            .ok_or(Error::StageNotConverted {
                index: self.graph.target,
                span,
            })?;
        let mut image = target.image;
        if !self.opts.labels.is_empty() {
            let labels = image.config.labels.get_or_insert_with(Default::default);
            labels.extend(self.opts.labels.clone());
        }
        image.architecture = target.platform.architecture.clone();
        image.os = target.platform.os.clone();
        image.variant = target.platform.variant.clone();
        image.created = None;
        image.rootfs = Default::default();
        let definition =
            marshal(&target.state).map_err(|source| Error::Marshal { source, span })?;
        Ok(Conversion {
            definition,
            image,
            state: target.state,
            base_image: target.base_image,
            stages: self.graph.clone(),
            context_paths: self.context_paths,
            epoch: self.epoch,
        })
    }

    fn ignore_cache(&self, name: Option<&str>) -> bool {
        self.opts.no_cache
            || name.is_some_and(|n| {
                self.opts
                    .no_cache_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(n))
            })
    }

    /// Resolves a base name that is not a stage (a named context, an `oci-layout://` image or
    /// an image reference) for `platform` into a pinned source state, its config, the pinned
    /// source and its label, and whether the image has no layers (then the state is scratch).
    fn image_source(
        &self,
        reference: &str,
        platform: &Platform,
        span: crate::Span,
    ) -> Result<PinnedImage, Error> {
        let invalid = |source| Error::InvalidReference {
            reference: reference.to_owned(),
            source,
            span,
        };
        let source = self.memo.source(reference).map_err(invalid)?;
        let found = self.memo.get(&source, platform, span)?;
        let digest = found.image.manifest_digest;
        let (pinned, label) = match (&source, &found.layout) {
            (ImageSource::Image(parsed), _) => {
                let pinned = parsed.with_digest(digest);
                (SourceId::Image(pinned.clone()), pinned.to_string())
            }
            (ImageSource::Layout(_), Some(path)) => (
                SourceId::OciLayout {
                    path: path.clone(),
                    reference: digest.to_string(),
                },
                format!("{OCI_LAYOUT_SCHEME}{path}@{digest}"),
            ),
            // Only layouts resolve with a path, and local contexts never resolve.
            _ => {
                return Err(Error::ImageNotFound {
                    reference: reference.to_owned(),
                    span,
                });
            }
        };
        let config = &found.image.config;
        let no_layers =
            config.rootfs.diff_ids.is_empty() && config.history.iter().all(|h| h.empty_layer);
        let node_platform = (*platform != self.target_platform).then(|| platform.clone());
        let state = if no_layers {
            State::scratch()
        } else {
            let op = match &pinned {
                SourceId::OciLayout { path, reference } => {
                    SourceOp::oci_layout(path.clone(), reference.clone())
                }
                SourceId::Image(r) => SourceOp::image(r.clone()),
                _ => unreachable!("pinned above"),
            };
            State::source(op, node_platform)
        };
        Ok(PinnedImage {
            state,
            config: config.clone(),
            pinned,
            label,
            no_layers,
        })
    }

    fn dispatch_stage(&mut self, rs: &ResolvedStage) -> Result<StageState, crate::Error> {
        let platform = llb_platform(&rs.platform);
        let explicit_platform = platform != self.target_platform;
        let own = rs.commands.get(rs.onbuild_triggers..).unwrap_or_default();
        let image_triggers = self.image_triggers.get(rs.index).copied().unwrap_or(0);
        let steps = own
            .iter()
            .skip(image_triggers)
            .filter(|c| {
                matches!(
                    c,
                    Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
                )
            })
            .count()
            + image_triggers
            + rs.onbuild_triggers;
        let name = if self.single {
            String::new()
        } else {
            rs.name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", rs.index))
        };
        let ignore_cache = self.ignore_cache(rs.name.as_deref());
        let file = self.opts.filename.clone();

        let mut st =
            match &rs.base {
                Base::Stage { index } => {
                    let mut parent = self.done.get(*index).cloned().flatten().ok_or(
                        Error::StageNotConverted {
                            index: *index,
                            span: rs.origin.span,
                        },
                    )?;
                    parent.image.config.on_build = None;
                    StageState {
                        name,
                        cmd_total: steps,
                        cmd_index: 0,
                        cmd_is_onbuild: false,
                        cmd_set: false,
                        ignore_cache,
                        ..parent
                    }
                }
                Base::Scratch | Base::Image { .. } => {
                    let mut st = StageState {
                        name,
                        state: State::scratch(),
                        image: empty_image(&platform),
                        platform: platform.clone(),
                        explicit_platform,
                        build_args: Vec::new(),
                        cmd_total: steps,
                        cmd_index: 0,
                        cmd_is_onbuild: false,
                        cmd_set: false,
                        ignore_cache,
                        base_image: None,
                        epoch: self.epoch,
                    };
                    if let Base::Image { reference } = &rs.base {
                        st.cmd_total += 1;
                        if let Ok(ImageSource::Local(_)) = self.memo.source(reference) {
                            return Err(Error::LocalContextBase {
                                name: reference.clone(),
                                span: rs.origin.span,
                            }
                            .into());
                        }
                        let PinnedImage {
                            state,
                            mut config,
                            pinned,
                            label,
                            no_layers,
                        } = self.image_source(reference, &platform, rs.origin.span)?;
                        st.state = state;
                        if !no_layers {
                            let text = format!("FROM {label}");
                            let label = st.prefix(&text);
                            st.state = st
                                .state
                                .with_metadata(metadata(label, &file, &rs.origin, false));
                            st.base_image = Some(pinned);
                        }
                        config.created = None;
                        config.config.on_build = None;
                        st.image = config;
                    }
                    if st.image.os != "windows"
                        && !st
                            .image
                            .config
                            .env
                            .iter()
                            .flatten()
                            .any(|e| split_env(e).0 == "PATH")
                    {
                        st.add_config_env("PATH", stages::DEFAULT_PATH);
                    }
                    for entry in st.image.config.env.clone().iter().flatten() {
                        let (k, v) = split_env(entry);
                        st.state = st.state.clone().with_env(k, v);
                    }
                    if let Some(p) = st.node_platform() {
                        st.state = st.state.clone().with_platform(p);
                    }
                    if let Some(wd) = st
                        .image
                        .config
                        .working_dir
                        .clone()
                        .filter(|w| !w.is_empty())
                    {
                        let wd = dispatch::clean_abs(&wd);
                        st.state = st.state.clone().with_cwd(&wd);
                        st.image.config.working_dir = Some(wd);
                    }
                    if let Some(user) = st.image.config.user.clone().filter(|u| !u.is_empty()) {
                        st.state = st.state.clone().with_user(user);
                    }
                    st
                }
            };

        let trigger_count = rs.onbuild_triggers + image_triggers;
        for (i, command) in rs.commands.iter().enumerate() {
            st.cmd_is_onbuild = i < trigger_count;
            self.dispatch(&mut st, command)?;
        }
        Ok(st)
    }

    fn dispatch(&mut self, st: &mut StageState, command: &Command) -> Result<(), Error> {
        let file = self.opts.filename.as_str();
        match command {
            Command::Env(c) => st.env(c),
            Command::Arg(c) => st.arg(c),
            Command::Label(c) => st.label(c),
            Command::User(c) => st.user(&c.user.value),
            Command::Workdir(c) => st.workdir(c, &self.lexer, file),
            Command::Expose(c) => st.expose(c),
            Command::Volume(c) => st.volume(c)?,
            Command::Cmd(c) => st.cmd(c),
            Command::Entrypoint(c) => st.entrypoint(c),
            Command::Healthcheck(c) => st.healthcheck(c),
            Command::StopSignal(c) => {
                st.image.config.stop_signal = Some(c.signal.value.clone());
                st.commit(format!("STOPSIGNAL {}", c.signal.value), false, false);
            }
            Command::Shell(c) => {
                st.image.config.shell = Some(c.shell.clone());
                st.commit(format!("SHELL [{}]", c.shell.join(" ")), false, false);
            }
            Command::Onbuild(c) => {
                st.image
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(c.expression.clone());
            }
            Command::Maintainer(c) => {
                st.image.author = Some(c.maintainer.clone());
                st.commit(format!("MAINTAINER {}", c.maintainer), false, false);
            }
            Command::Run(c) => {
                let mut sources = Vec::with_capacity(c.mounts.len());
                for m in &c.mounts {
                    let source = match (&m.from, m.kind) {
                        (Some(from), kind) if kind != MountType::Tmpfs => {
                            match find_stage_by_name(self.df, from) {
                                Some(index) => MountSource::State(self.stage_state(index, m.span)?),
                                None => MountSource::State(self.extra_image(from, m.span)?),
                            }
                        }
                        _ => MountSource::Default,
                    };
                    sources.push(source);
                }
                let context = self.context.clone();
                st.run(c, sources, &context, &self.proxy_env, &self.lexer, file)?;
            }
            Command::Copy(c) => {
                let source = match &c.from {
                    None => self.context.clone(),
                    Some(from) => self.copy_from(&from.value, from.span)?,
                };
                let spec = CopySpec {
                    origin: &c.origin,
                    files: &c.files,
                    exclude: c.exclude.iter().map(|w| w.value.clone()).collect(),
                    source,
                    is_add: false,
                    chown: c.chown.as_ref().map(|w| w.value.clone()),
                    chmod: chmod(c.chmod.as_ref()),
                    link: c.link,
                    parents: c.parents,
                    checksum: None,
                    unpack: None,
                };
                st.copy(spec, &self.lexer, file)?;
            }
            Command::Add(c) => {
                let spec = CopySpec {
                    origin: &c.origin,
                    files: &c.files,
                    exclude: c.exclude.iter().map(|w| w.value.clone()).collect(),
                    source: self.context.clone(),
                    is_add: true,
                    chown: c.chown.as_ref().map(|w| w.value.clone()),
                    chmod: chmod(c.chmod.as_ref()),
                    link: c.link,
                    parents: false,
                    checksum: c.checksum.as_ref().map(|w| w.value.clone()),
                    unpack: c.unpack,
                };
                st.copy(spec, &self.lexer, file)?;
            }
        }
        Ok(())
    }

    /// The final state of an already converted stage.
    fn stage_state(&self, index: usize, span: crate::Span) -> Result<State, Error> {
        self.done
            .get(index)
            .and_then(Option::as_ref)
            .map(|s| s.state.clone())
            .ok_or(Error::InvalidStageIndex {
                index: index.to_string(),
                span,
            })
    }

    /// An image used as a `COPY --from` or `--mount from=` source, for the target platform.
    /// BuildKit names it `FROM <pinned ref>`, without a step prefix. A named context that is a
    /// local directory is that local source.
    fn extra_image(&self, reference: &str, span: crate::Span) -> Result<State, Error> {
        if let Ok(ImageSource::Local(name)) = self.memo.source(reference) {
            return Ok(State::local(name.clone(), LocalAttrs::default())
                .named(format!("[context {name}] load from client")));
        }
        let image = self.image_source(reference, &self.target_platform, span)?;
        Ok(if image.no_layers {
            image.state
        } else {
            image.state.named(format!("FROM {}", image.label))
        })
    }

    /// `COPY --from`: a stage index, a stage name, or an image.
    fn copy_from(&self, from: &str, span: crate::Span) -> Result<State, Error> {
        if let Ok(index) = from.parse::<usize>() {
            return self.stage_state(index, span);
        }
        match find_stage_by_name(self.df, from) {
            Some(index) => self.stage_state(index, span),
            None => self.extra_image(from, span),
        }
    }
}

/// A base image resolved and pinned (see [`Converter::image_source`]).
struct PinnedImage {
    /// Its source (scratch for an image without layers).
    state: State,
    config: ImageConfig,
    /// The source pinned by manifest digest.
    pinned: SourceId,
    /// How progress names it (`docker.io/library/alpine:3@sha256:…`,
    /// `oci-layout:///srv/l@sha256:…`).
    label: String,
    no_layers: bool,
}

fn chmod(
    c: Option<&crate::instructions::Chmod>,
) -> Option<(String, crate::instructions::ChmodSpec)> {
    let c = c?;
    Some((c.value.value.clone(), c.mode.clone()?))
}

/// BuildKit's `SOURCE_DATE_EPOCH`: the build argument, else a non-empty global ARG value.
fn source_date_epoch(opts: &ConvertOptions, graph: &StageGraph) -> Result<Option<i64>, Error> {
    const KEY: &str = "SOURCE_DATE_EPOCH";
    let value = opts
        .resolve
        .build_args
        .get(KEY)
        .or_else(|| graph.global_args.values.get(KEY).filter(|v| !v.is_empty()));
    let Some(value) = value else { return Ok(None) };
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| Error::InvalidSourceDateEpoch {
            value: value.clone(),
            span: crate::Span::point(0),
        })
}

fn find_stage_by_name(df: &Dockerfile, name: &str) -> Option<usize> {
    df.stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Sources BuildKit registers as extra (unnamed) states: `COPY --from=<image>` and every RUN
/// mount whose `from` is not a stage. A build with one stage and none of these names its
/// steps without a stage name.
fn unregistered_sources(df: &Dockerfile) -> usize {
    let mut n = 0;
    for stage in &df.stages {
        for c in &stage.commands {
            match c {
                Command::Copy(c) => {
                    if let Some(from) = &c.from
                        && from.value.parse::<usize>().is_err()
                        && find_stage_by_name(df, &from.value).is_none()
                    {
                        n += 1;
                    }
                }
                Command::Run(r) => {
                    for m in &r.mounts {
                        let from = m.from.as_deref().unwrap_or("scratch");
                        if find_stage_by_name(df, from).is_none() {
                            n += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    n
}

/// The context paths COPY, ADD and RUN bind mounts read, relative and sorted (BuildKit's
/// `normalizeContextPaths`); empty when the whole context is needed.
fn context_paths(graph: &StageGraph) -> Vec<String> {
    let mut paths = std::collections::BTreeSet::new();
    for stage in &graph.stages {
        for c in &stage.commands {
            match c {
                Command::Copy(c) if c.from.is_none() => {
                    paths.extend(
                        c.files
                            .sources
                            .iter()
                            .map(|w| dispatch::clean_abs(&w.value)),
                    );
                }
                Command::Add(c) => paths.extend(
                    c.files
                        .sources
                        .iter()
                        .filter(|w| !is_remote(&w.value))
                        .map(|w| dispatch::clean_abs(&w.value)),
                ),
                Command::Run(r) => paths.extend(
                    r.mounts
                        .iter()
                        .filter(|m| m.kind == MountType::Bind && m.from.is_none())
                        .map(|m| dispatch::clean_abs(m.source.as_deref().unwrap_or_default())),
                ),
                _ => {}
            }
        }
    }
    if paths.contains("/") {
        return Vec::new();
    }
    paths
        .into_iter()
        .map(|p| p.trim_start_matches('/').to_owned())
        .collect()
}
