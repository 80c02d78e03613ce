//! The stage graph: which stages a build needs, what each is based on, and every instruction
//! with its variables expanded — BuildKit's stage resolution and ARG/ENV scoping from
//! `dockerfile2llb/convert.go`, without the LLB.
//!
//! [`resolve`] follows BuildKit's order of work:
//!
//! 1. **Global scope.** The predefined platform ARGs (`BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`,
//!    `BUILDVARIANT`, `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`,
//!    `TARGETSTAGE`; a build argument of the same name overrides each), then the ARGs before
//!    the first FROM, each default expanded with what precedes it and replaced by a build
//!    argument of the same name. Undeclared build arguments do not enter the scope.
//! 2. **Bases.** Each FROM's base and `--platform` are expanded with the global scope only.
//!    A base naming an *earlier* stage (case-insensitively) is that stage; `scratch` is the
//!    empty base; anything else, including the name of a later stage or of the stage itself,
//!    is an image reference (BuildKit registers stage names as it goes).
//! 3. **Target.** `--target` picks a stage by name (case-insensitive), default the last stage.
//! 4. **Dependencies.** `COPY --from` names a stage (any stage, by name), a stage index, or
//!    else an image; `RUN --mount=from=` names a stage by name only, or else an image. An
//!    index out of range is an error; so is a cycle (a stage copying from itself included),
//!    checked over all stages.
//! 5. **Reachability.** Stages the target does not reach through bases and dependencies are
//!    dropped. Reachable stages are listed in file order, which is a dependency order because
//!    a reachable stage may only use earlier stages (`cannot copy from stage …, it needs to
//!    be defined before current stage …`).
//! 6. **ONBUILD.** A stage built `FROM` another stage first runs that stage's ONBUILD
//!    triggers (parsed again; their errors and dependencies count only if the stage is built).
//! 7. **Expansion.** Each reachable stage is walked with a [`StageScope`]: the base image's
//!    environment (from a [`BaseImageEnv`]; empty when there is no registry) or the parent
//!    stage's final scope, then ARG and ENV in order. Inside a stage a global ARG, and a
//!    predefined platform ARG, is visible only after `ARG NAME` re-declares it.
//!
//! Differences from BuildKit, on purpose: a FROM naming an earlier stage matches it
//! case-insensitively (BuildKit compares the expanded text with the lowercased names, and an
//! uppercase image reference then fails to parse); errors about `--target` and a file without
//! stages have no place in the file and point at its start.
//!
//! Proxy build arguments (`HTTP_PROXY`, `http_proxy`, … `ALL_PROXY`, `all_proxy`) need no
//! declaration: they are handed to every RUN but kept out of the image history and the cache
//! key; [`StageGraph::proxy_env`] records them.

mod error;
mod graph;
pub(crate) mod onbuild;
mod platform;
mod scope;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::instructions::{Command, Dockerfile, Origin, Stage};
use crate::shell::Lexer;
use crate::span::Span;

use graph::{check_cycles, command_deps, find_stage};

pub use error::{Error, TriggerError};
pub use platform::{Platform, PlatformError};
pub use scope::{DEFAULT_PATH, DeclaredArg, GlobalArgs, NON_ENV_ARGS, StageScope};

/// The build arguments whose names BuildKit treats as proxy settings.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What a resolution depends on besides the Dockerfile. The default builds for the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// The platform being built for (`TARGETPLATFORM`; the default `--platform` of stages).
    pub target_platform: Platform,
    /// The platform of the builder (`BUILDPLATFORM`).
    pub build_platform: Platform,
}

/// Supplies the `Env` of base images' configs. The converter implements it over the image
/// store; [`NoImageEnv`] knows no image.
pub trait BaseImageEnv {
    /// The environment of `reference` for `platform`, or `None` when unknown.
    fn image_env(&self, reference: &str, platform: &Platform) -> Option<Vec<(String, String)>>;
}

/// A [`BaseImageEnv`] that knows no image: every image starts with an empty environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoImageEnv;

impl BaseImageEnv for NoImageEnv {
    fn image_env(&self, _: &str, _: &Platform) -> Option<Vec<(String, String)>> {
        None
    }
}

/// Image references mapped to their environment, for tests and offline use.
impl BaseImageEnv for BTreeMap<String, Vec<(String, String)>> {
    fn image_env(&self, reference: &str, _: &Platform) -> Option<Vec<(String, String)>> {
        self.get(reference).cloned()
    }
}

/// What a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image reference, expanded.
    Image {
        /// The reference as written after expansion (not normalized).
        reference: String,
    },
    /// An earlier stage.
    Stage {
        /// Its index in the Dockerfile.
        index: usize,
    },
}

/// A reachable stage with everything resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedStage {
    /// Index in the Dockerfile.
    pub index: usize,
    /// `AS` name, lowercased.
    pub name: Option<String>,
    /// The FROM instruction.
    pub origin: Origin,
    /// The base.
    pub base: Base,
    /// The platform: the base stage's for a stage base (as BuildKit, even over `--platform`),
    /// else `--platform`, else the target platform.
    pub platform: Platform,
    /// Stages this one needs (its base and `--from` sources), sorted.
    pub deps: Vec<usize>,
    /// Images used as `COPY --from` or `--mount from=` sources.
    pub image_sources: Vec<String>,
    /// How many of [`ResolvedStage::commands`] (at the start) are the base stage's ONBUILD
    /// triggers.
    pub onbuild_triggers: usize,
    /// The commands with variables expanded, the base stage's ONBUILD triggers first.
    pub commands: Vec<Command>,
    /// The environment at the end of the stage, as RUN sees it (ARG values included).
    pub env: Vec<(String, String)>,
    /// The environment at the end of the stage as stored in the image config.
    pub config_env: Vec<(String, String)>,
    /// The ARGs declared in the stage (and its base stages), with their values.
    pub args: Vec<DeclaredArg>,
}

/// The stages a build needs, in dependency order, the last being the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageGraph {
    /// Index (in the Dockerfile) of the target stage.
    pub target: usize,
    /// Reachable stages in dependency (file) order.
    pub stages: Vec<ResolvedStage>,
    /// Build arguments and the global scope.
    pub global_args: GlobalArgs,
    /// Proxy build arguments, given to every RUN without declaration; never written to the
    /// image history nor part of a cache key.
    pub proxy_env: BTreeMap<String, String>,
    /// Build arguments that no ARG of the build declares (BuildKit warns about them).
    pub unused_build_args: Vec<String>,
    /// The Dockerfile's escape token, for a [`StageScope`] walking the stages again.
    pub escape: char,
}

impl StageGraph {
    /// The resolved stage with Dockerfile index `index`, if reachable.
    pub fn stage(&self, index: usize) -> Option<&ResolvedStage> {
        self.stages.iter().find(|s| s.index == index)
    }

    /// The target stage.
    pub fn target_stage(&self) -> Option<&ResolvedStage> {
        self.stage(self.target)
    }
}

/// Resolves the stage graph with no knowledge of base images (their environment is empty).
pub fn resolve(df: &Dockerfile, opts: &ResolveOptions) -> Result<StageGraph, Error> {
    resolve_with_images(df, opts, &NoImageEnv)
}

/// What FROM resolved to.
struct StageBase {
    base: Base,
    platform: Option<Platform>,
}

fn predefined_args(opts: &ResolveOptions, target_stage: &str) -> BTreeMap<String, String> {
    let (b, t) = (&opts.build_platform, &opts.target_platform);
    let mut args = BTreeMap::new();
    for (k, v) in [
        ("BUILDPLATFORM", b.to_string()),
        ("BUILDOS", b.os.clone()),
        ("BUILDARCH", b.architecture.clone()),
        ("BUILDVARIANT", b.variant.clone()),
        ("TARGETPLATFORM", t.to_string()),
        ("TARGETOS", t.os.clone()),
        ("TARGETARCH", t.architecture.clone()),
        ("TARGETVARIANT", t.variant.clone()),
        ("TARGETSTAGE", target_stage.to_string()),
    ] {
        let v = opts.build_args.get(k).cloned().unwrap_or(v);
        args.insert(k.to_string(), v);
    }
    args
}

fn global_args(df: &Dockerfile, opts: &ResolveOptions, lexer: &Lexer) -> Result<GlobalArgs, Error> {
    let target_stage = match &opts.target {
        Some(t) => t.to_lowercase(),
        None => df
            .stages
            .last()
            .and_then(|s| s.name.clone())
            .unwrap_or_default(),
    };
    let mut values = predefined_args(opts, &target_stage);
    for cmd in &df.meta_args {
        for decl in &cmd.args {
            let value = match (opts.build_args.get(&decl.name), &decl.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => {
                    Some(lexer.process_word(default, &values).map_err(|source| {
                        Error::Expansion {
                            word: default.clone(),
                            source,
                            span: cmd.origin.span,
                        }
                    })?)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                values.insert(decl.name.clone(), v);
            }
        }
    }
    Ok(GlobalArgs {
        build_args: opts.build_args.clone(),
        values,
    })
}

fn resolve_base(
    df: &Dockerfile,
    stage: &Stage,
    globals: &GlobalArgs,
    lexer: &Lexer,
) -> Result<StageBase, Error> {
    let expand = |word: &str| {
        lexer
            .process_word(word, &globals.values)
            .map_err(|source| Error::Expansion {
                word: word.to_string(),
                source,
                span: stage.span(),
            })
    };
    let name = expand(&stage.base)?;
    if name.is_empty() {
        return Err(Error::BlankBaseName {
            base: stage.base.clone(),
            span: stage.span(),
        });
    }
    let platform = match (&stage.platform, stage.platform_span) {
        (Some(expr), span) => {
            let span = span.unwrap_or(stage.span());
            let value = expand(expr)?;
            if value.is_empty() {
                return Err(Error::EmptyPlatform {
                    expression: expr.clone(),
                    span,
                });
            }
            Some(
                Platform::parse(&value).map_err(|source| Error::InvalidPlatform {
                    expression: expr.clone(),
                    source,
                    span,
                })?,
            )
        }
        _ => None,
    };
    let earlier = df.stages.get(..stage.index).unwrap_or_default();
    let base = if name.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else if let Some(index) = find_stage(earlier, &name) {
        Base::Stage { index }
    } else {
        Base::Image { reference: name }
    };
    Ok(StageBase { base, platform })
}

/// Resolves the stage graph, taking base images' environment from `images`.
pub fn resolve_with_images(
    df: &Dockerfile,
    opts: &ResolveOptions,
    images: &dyn BaseImageEnv,
) -> Result<StageGraph, Error> {
    if df.stages.is_empty() {
        return Err(Error::NoStages {
            span: scope::file_start(),
        });
    }
    // Everything below indexes by `Stage::index`; a hand-built Dockerfile may not number its
    // stages 0, 1, 2…, so renumber a copy rather than risk an out-of-bounds index.
    let renumbered;
    let df = if df.stages.iter().enumerate().all(|(i, s)| s.index == i) {
        df
    } else {
        let mut copy = df.clone();
        for (i, s) in copy.stages.iter_mut().enumerate() {
            s.index = i;
        }
        renumbered = copy;
        &renumbered
    };
    let lexer = Lexer::new(df.escape);
    let globals = global_args(df, opts, &lexer)?;
    let bases = df
        .stages
        .iter()
        .map(|s| resolve_base(df, s, &globals, &lexer))
        .collect::<Result<Vec<_>, _>>()?;

    let target = match &opts.target {
        None => df.stages.len() - 1,
        Some(name) => find_stage(&df.stages, name).ok_or_else(|| Error::TargetNotFound {
            target: name.clone(),
            available: df.stages.iter().filter_map(|s| s.name.clone()).collect(),
            span: scope::file_start(),
        })?,
    };

    // ONBUILD triggers of a base stage run first in the stage. Problems with them only matter
    // for stages that are built, so keep the results and report errors when reached.
    let triggers: Vec<Result<onbuild::Triggers, Error>> = df
        .stages
        .iter()
        .map(|s| match bases[s.index].base {
            Base::Stage { index } => {
                let commands = onbuild::triggers(&df.stages[index], &s.origin)?;
                let (deps, images) = command_deps(df, &commands)?;
                Ok(onbuild::Triggers {
                    commands,
                    deps,
                    images,
                })
            }
            _ => Ok(onbuild::Triggers::default()),
        })
        .collect();

    let mut deps = Vec::with_capacity(df.stages.len());
    let mut image_sources = Vec::with_capacity(df.stages.len());
    for stage in &df.stages {
        let (mut d, mut i) = command_deps(df, &stage.commands)?;
        if let Ok(t) = &triggers[stage.index] {
            d.splice(0..0, t.deps.iter().cloned());
            i.splice(0..0, t.images.iter().cloned());
        }
        deps.push(d);
        image_sources.push(i);
    }
    let edges: Vec<Vec<(usize, Span)>> = df
        .stages
        .iter()
        .map(|s| {
            let mut e: Vec<(usize, Span)> =
                deps[s.index].iter().map(|d| (d.stage, d.span)).collect();
            if let Base::Stage { index } = bases[s.index].base {
                e.insert(0, (index, s.span()));
            }
            e
        })
        .collect();
    check_cycles(df, &edges)?;

    let mut reachable = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !std::mem::replace(&mut reachable[i], true) {
            todo.extend(edges[i].iter().map(|(d, _)| *d));
        }
    }

    let mut scopes: Vec<Option<StageScope<'_>>> = vec![None; df.stages.len()];
    let mut platforms: Vec<Option<Platform>> = vec![None; df.stages.len()];
    let mut resolved = Vec::new();
    for stage in df.stages.iter().filter(|s| reachable[s.index]) {
        let trigger_commands = triggers[stage.index].clone()?.commands;
        for dep in deps[stage.index].iter().filter(|d| d.stage >= stage.index) {
            if dep.stage == stage.index {
                continue; // a self-reference is a cycle, reported above
            }
            return Err(match &dep.mount_target {
                None => Error::CopyFromLaterStage {
                    from: dep.from.clone(),
                    stage: stage.display_name(),
                    span: dep.span,
                },
                Some(target) => Error::MountFromLaterStage {
                    from: dep.from.clone(),
                    target: target.clone(),
                    span: dep.span,
                },
            });
        }
        let base = &bases[stage.index];
        let (platform, mut scope) = match &base.base {
            Base::Stage { index } => {
                let parent_platform = platforms[*index].clone();
                let parent = scopes[*index].clone();
                // BuildKit's `dispatchState.init` takes the parent's platform even over an
                // explicit `--platform`: the filesystem is the parent's.
                let platform = parent_platform
                    .or_else(|| base.platform.clone())
                    .unwrap_or_else(|| opts.target_platform.clone());
                let scope =
                    parent.unwrap_or_else(|| StageScope::new(lexer, &globals, &[], &platform.os));
                (platform, scope)
            }
            Base::Scratch | Base::Image { .. } => {
                let platform = base
                    .platform
                    .clone()
                    .unwrap_or_else(|| opts.target_platform.clone());
                let env = match &base.base {
                    Base::Image { reference } => {
                        images.image_env(reference, &platform).unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                (
                    platform.clone(),
                    StageScope::new(lexer, &globals, &env, &platform.os),
                )
            }
        };
        let commands = trigger_commands
            .iter()
            .chain(&stage.commands)
            .map(|c| scope.apply(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut stage_deps: BTreeSet<usize> = deps[stage.index].iter().map(|d| d.stage).collect();
        if let Base::Stage { index } = base.base {
            stage_deps.insert(index);
        }
        resolved.push(ResolvedStage {
            index: stage.index,
            name: stage.name.clone(),
            origin: stage.origin.clone(),
            base: base.base.clone(),
            platform: platform.clone(),
            deps: stage_deps.into_iter().collect(),
            image_sources: image_sources[stage.index].clone(),
            onbuild_triggers: trigger_commands.len(),
            commands,
            env: scope.env().to_vec(),
            config_env: scope.config_env().to_vec(),
            args: scope.args().to_vec(),
        });
        platforms[stage.index] = Some(platform);
        scopes[stage.index] = Some(scope);
    }

    let proxy_env: BTreeMap<String, String> = opts
        .build_args
        .iter()
        .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let declared: BTreeSet<&str> = df
        .meta_args
        .iter()
        .flat_map(|c| &c.args)
        .map(|d| d.name.as_str())
        .chain(
            resolved
                .iter()
                .flat_map(|s| s.args.iter().map(|a| a.name.as_str())),
        )
        .collect();
    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| {
            !declared.contains(k.as_str())
                && !PROXY_ARGS.contains(&k.as_str())
                && !k.starts_with("BUILDKIT_")
                && k.as_str() != "SOURCE_DATE_EPOCH"
                && !globals.values.contains_key(k.as_str())
        })
        .cloned()
        .collect();
    Ok(StageGraph {
        target,
        stages: resolved,
        proxy_env,
        unused_build_args,
        global_args: globals.clone(),
        escape: df.escape,
    })
}
