//! Test harness: a store in a temp dir, a build context, and a scripted fake executor.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dray_cache::{Root, Store};
use dray_fsutil::dockerignore::Patterns;
use dray_llb::{Copy, Definition, ExecSpec as LlbExec, FileChain, State, marshal};
use dray_solver::{
    ExecSpec, Executor, LocalSource, LogSink, LogStream, OpError, SolveOptions, Solver,
};
use tokio_util::sync::CancellationToken;

/// A temp root with a store and a context directory.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: Store,
    pub ctx: PathBuf,
    pub exec: Arc<FakeExecutor>,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&Root::at(tmp.path().join("root"))).unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        Self {
            tmp,
            store,
            ctx,
            exec: Arc::new(FakeExecutor::default()),
        }
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn solver(&self) -> Solver {
        self.solver_with(SolveOptions::default())
    }

    pub fn solver_with(&self, options: SolveOptions) -> Solver {
        let ignore = std::fs::read_to_string(self.ctx.join(".dockerignore")).unwrap_or_default();
        let patterns = Patterns::parse(&ignore).unwrap();
        Solver::new(self.store.clone())
            .with_executor(self.exec.clone())
            .with_context(LocalSource::new("context", &self.ctx, patterns))
            .with_options(options)
    }
}

/// The build context source, as the converter makes it.
pub fn context() -> State {
    State::local("context", dray_llb::LocalAttrs::default())
}

/// `COPY <src> <dest>` from the context onto `base`.
pub fn copy(base: &State, src: &str, dest: &str, name: &str) -> State {
    base.file(FileChain::new().copy(
        &context(),
        Copy {
            src: src.into(),
            dest: dest.into(),
            create_dest_path: true,
            allow_wildcard: true,
            dir_copy_contents: true,
            follow_symlinks: true,
            ..Copy::default()
        },
    ))
    .named(name)
}

/// A `RUN` the fake executor understands: `["fake", <sleep ms>, <file to write>, <content>]`,
/// or `["fail"]`, or `["fail", <step name>]` to fail only once that step has started (so a test
/// of cancellation does not race the scheduler).
pub fn run(base: &State, sleep_ms: u64, file: &str, content: &str, name: &str) -> State {
    base.run(LlbExec::new([
        "fake".to_owned(),
        sleep_ms.to_string(),
        file.to_owned(),
        content.to_owned(),
    ]))
    .root()
    .named(name)
}

pub fn def(head: &State) -> Definition {
    marshal(head).unwrap()
}

/// Records the steps it ran; sleeps (cancellably) and writes one file into the upper dir.
#[derive(Debug, Default)]
pub struct FakeExecutor {
    pub runs: Mutex<Vec<String>>,
    pub specs: Mutex<Vec<ExecSpec>>,
}

impl FakeExecutor {
    pub fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.runs.lock().unwrap().clear();
    }
}

#[async_trait]
impl Executor for FakeExecutor {
    async fn run(
        &self,
        spec: &ExecSpec,
        logs: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), OpError> {
        self.runs.lock().unwrap().push(spec.name.clone());
        self.specs.lock().unwrap().push(spec.clone());
        let args = &spec.meta.args;
        if args[0] == "fail" {
            if let Some(wait_for) = args.get(1) {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while !self.runs().iter().any(|r| r == wait_for) {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{wait_for} never started"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            logs.write(LogStream::Stderr, b"boom\n");
            return Err(OpError::ExitCode {
                args: args.clone(),
                code: 1,
                tail: vec!["boom".into()],
            });
        }
        let ms: u64 = args[1].parse().unwrap();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            () = cancel.cancelled() => return Err(OpError::Internal { message: "cancelled".into() }),
        }
        let path = spec.rootfs.upper.join(args[2].trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &args[3]).unwrap();
        logs.write(LogStream::Stdout, format!("wrote {}\n", args[2]).as_bytes());
        Ok(())
    }
}

/// Reads `path` through a result's layers (top first), ignoring whiteouts.
pub fn read_in(layers: &[PathBuf], path: &str) -> Option<String> {
    layers
        .iter()
        .rev()
        .map(|l| l.join(path.trim_start_matches('/')))
        .find(|p| p.symlink_metadata().is_ok())
        .and_then(|p| std::fs::read_to_string(p).ok())
}

pub fn exists(dir: &Path, rel: &str) -> bool {
    dir.join(rel).symlink_metadata().is_ok()
}
