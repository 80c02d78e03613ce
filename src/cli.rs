//! Command-line argument types (clap). No logic lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A daemonless, BuildKit-style Dockerfile image builder.
#[derive(Debug, Parser)]
#[command(name = "dray", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Where dray keeps its images and cache. Default: `$DRAY_ROOT`, else `/var/lib/dray` as
    /// root, else `$XDG_DATA_HOME/dray`.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// List images in the local store.
    #[command(visible_alias = "ls")]
    Images,
    /// Show an image's configuration as JSON, like `docker image inspect`.
    Inspect(ImageNameArgs),
    /// Show an image's history, like `docker history`.
    History(ImageNameArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Remove image names from the local store.
    Rmi(RmiArgs),
    /// Write images to an OCI or docker archive.
    Save(SaveArgs),
    /// Load images from an OCI or docker archive.
    Load(LoadArgs),
    /// Download an image from a registry into the local store.
    Pull(PullArgs),
    /// Upload a local image to a registry.
    Push(PushArgs),
    /// Store credentials for a registry in docker's config.json.
    Login(LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(LogoutArgs),
    /// Tools for looking inside dray's frontend.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Inspect and manage the layer cache.
    #[command(subcommand)]
    Cache(crate::commands::cache::CacheCommand),
    /// Show recorded builds: their steps, cache hits and logs.
    #[command(subcommand)]
    Builds(crate::commands::builds::BuildsCommand),
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The build context: a directory.
    #[arg(value_name = "CONTEXT")]
    pub(crate) context: PathBuf,
    /// Name (and optionally tag) the image: `name[:tag]`. Repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub(crate) tags: Vec<String>,
    /// The Dockerfile (default: `CONTEXT/Dockerfile`; `-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Set a build-time variable. `NAME` alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub(crate) build_args: Vec<String>,
    /// Give `FROM NAME` and `COPY --from=NAME` another source, as buildx does: an image in an
    /// OCI layout (`oci-layout://PATH[:TAG|@DIGEST]`), an image (`docker-image://REF`), or a
    /// local directory to copy from (`DIR`). Repeatable.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub(crate) build_contexts: Vec<String>,
    /// The stage to build.
    #[arg(long, value_name = "STAGE")]
    pub(crate) target: Option<String>,
    /// The target platform (`os/arch[/variant]`); the host's by default.
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Do not use the cache: every step runs (results are still saved).
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Set a label on the image. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) iidfile: Option<PathBuf>,
    /// Write build result metadata (image ID, manifest digest, names) to this file as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,
    /// Print only the image ID; show no progress.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub(crate) max_parallelism: Option<usize>,
    /// Export the result, in docker's syntax: `type=oci|docker|local|tar,dest=PATH[,KEY=VALUE…]`
    /// (`dest=-` is stdout; options `name=`, `compression=gzip|zstd|uncompressed`,
    /// `compression-level=`, `force-compression=true`, `tar=false`). Repeatable.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "type=TYPE,dest=PATH",
        value_parser = crate::commands::output::parse_output
    )]
    pub(crate) outputs: Vec<crate::commands::output::OutputSpec>,
    /// A secret for `RUN --mount=type=secret`: `id=ID[,src=PATH|,env=VAR]` (`type=file|env`
    /// accepted; a bare `id=ID` reads the variable ID, else the file ID). Repeatable.
    #[arg(long = "secret", value_name = "id=ID[,src=PATH|,env=VAR]")]
    pub(crate) secrets: Vec<String>,
    /// An SSH agent for `RUN --mount=type=ssh`: `default` (the agent at `$SSH_AUTH_SOCK`) or
    /// `ID=SOCKET`. Repeatable.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub(crate) ssh: Vec<String>,
    /// What runs `RUN` steps: dray's own namespace sandbox, or the `runc` binary.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Native)]
    pub(crate) executor: ExecutorKind,
    /// Always resolve base images against their registry, even when they are in the local store.
    #[arg(long)]
    pub(crate) pull: bool,
    /// A registry (`host[:port]`) whose TLS certificate is not checked, reached over plain HTTP
    /// when it does not speak TLS (as loopback registries are; those keep certificate checks).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
    /// After the build, explain every cache miss: the first thing that differs from the
    /// closest earlier record of the same step.
    #[arg(long)]
    pub(crate) explain_cache: bool,
}

/// The backend that runs `RUN` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecutorKind {
    /// The built-in namespace and overlayfs sandbox.
    Native,
    /// `runc` (`/usr/sbin/runc`) over an OCI bundle.
    Runc,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SaveArgs {
    /// Images to save (names or IDs).
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
    /// The archive to write (default, or `-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = ArchiveFormatArg::Oci)]
    pub(crate) format: ArchiveFormatArg,
}

/// The archive formats of `dray save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ArchiveFormatArg {
    /// An OCI image layout as a tar.
    Oci,
    /// The OCI layout plus docker's `manifest.json` (loadable by `docker load`).
    Docker,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The archive to read (default, or `-`: standard input).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image: `name[:tag][@digest]`.
    #[arg(value_name = "NAME")]
    pub(crate) image: String,
    /// The platform to pull from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// A registry (`host[:port]`) whose TLS certificate is not checked, reached over plain HTTP
    /// when it does not speak TLS (as loopback registries are; those keep certificate checks).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
    /// Print only the image name.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// How to show download progress (per layer: bytes so far of all its bytes).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The local image and where it goes: `REGISTRY/NAME[:TAG]`.
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) image: String,
    /// A registry (`host[:port]`) whose TLS certificate is not checked, reached over plain HTTP
    /// when it does not speak TLS (as loopback registries are; those keep certificate checks).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
    /// Write the pushed digest and name to this file as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry (`host[:port]`); Docker Hub when omitted.
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
    /// The username.
    #[arg(short, long)]
    pub(crate) username: Option<String>,
    /// The password (prefer --password-stdin: arguments are visible to other users).
    #[arg(short, long)]
    pub(crate) password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// A registry (`host[:port]`) whose TLS certificate is not checked, reached over plain HTTP
    /// when it does not speak TLS (as loopback registries are; those keep certificate checks).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry (`host[:port]`); Docker Hub when omitted.
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

/// How build progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProgressMode {
    /// `tty` when stderr is a terminal and `CI` is unset, else `plain`.
    Auto,
    /// One live line per step.
    Tty,
    /// BuildKit-style lines for logs: `#3 [build 2/5] COPY . .`, `#3 DONE 0.2s`.
    Plain,
    /// One JSON object per progress event, on stderr.
    Rawjson,
    /// Nothing.
    Quiet,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImageNameArgs {
    /// An image name (`app`, `app:1.0`) or image ID (prefix).
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    /// The existing image (name or ID).
    #[arg(value_name = "SOURCE")]
    pub(crate) source: String,
    /// The new name.
    #[arg(value_name = "TARGET")]
    pub(crate) target: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmiArgs {
    /// Image names to remove.
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DebugCommand {
    /// Print the parse tree of a Dockerfile in BuildKit's dump format.
    Parse(DebugParseArgs),
    /// Print the stages a build would run, in dependency order, with variables expanded (JSON).
    Stages(DebugStagesArgs),
    /// Print the op graph a build would solve (like `buildctl debug dump-llb`).
    Llb(DebugLlbArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugLlbArgs {
    #[command(flatten)]
    pub(crate) stages: DebugStagesArgs,
    /// Output format: sorted, stable JSON, or a Graphviz digraph.
    #[arg(long, value_enum, default_value_t = GraphFormat::Json)]
    pub(crate) format: GraphFormat,
}

/// How `dray debug llb` prints the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    /// Pretty JSON with sorted keys.
    Json,
    /// Graphviz `dot`.
    Dot,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugParseArgs {
    /// The Dockerfile to parse (`-` reads standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    pub(crate) file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DebugStagesArgs {
    /// The Dockerfile to read (`-` reads standard input).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "Dockerfile"
    )]
    pub(crate) file: PathBuf,
    /// Set a build-time variable, as `docker build --build-arg` does. `NAME` alone takes the
    /// value from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub(crate) build_args: Vec<String>,
    /// The stage to build; stages it does not depend on are dropped.
    #[arg(long, value_name = "STAGE")]
    pub(crate) target: Option<String>,
    /// The target platform (`os/arch[/variant]`); the host's by default.
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
}
