//! Secrets and SSH agents through a solve: each exec gets its mount's host path, the content
//! never reaches a key or a record, in-memory secrets exist as files only during the solve,
//! and a missing required id fails the step naming it.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dray_llb::{ExecSpec as LlbExec, Mount, SecretMount, State};
use dray_solver::{
    ExecSpec, Executor, LogSink, MountSpec, NullReporter, OpError, SecretSource, SecretValue,
    Secrets, SolveOptions, Solver,
};
use tokio_util::sync::CancellationToken;

use common::{Fixture, def};

/// Records each exec's secret and SSH mounts with what their host path held during the run.
#[derive(Default)]
struct SecretReader {
    seen: Mutex<Vec<(MountSpec, Option<String>)>>,
}

#[async_trait]
impl Executor for SecretReader {
    async fn run(
        &self,
        spec: &ExecSpec,
        _logs: &dyn LogSink,
        _cancel: &CancellationToken,
    ) -> Result<(), OpError> {
        for m in &spec.mounts {
            let content = m
                .host_source
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok());
            self.seen.lock().unwrap().push((m.clone(), content));
        }
        std::fs::write(spec.rootfs.upper.join("out"), "built").unwrap();
        Ok(())
    }
}

fn secret_mount(id: &str, optional: bool) -> SecretMount {
    SecretMount {
        id: id.into(),
        uid: 0,
        gid: 0,
        mode: 0o400,
        optional,
    }
}

fn step(mounts: Vec<Mount>) -> dray_llb::Definition {
    let mut exec = LlbExec::new(["sh", "-c", "cat /run/secrets/token"]);
    for m in mounts {
        exec = exec.mount(m);
    }
    def(&State::scratch().run(exec).root().named("RUN with secrets"))
}

fn solver(fx: &Fixture, exec: &Arc<SecretReader>, secrets: Secrets) -> Solver {
    Solver::new(fx.store.clone())
        .with_executor(exec.clone())
        .with_options(SolveOptions {
            secrets,
            ..SolveOptions::default()
        })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tmp_entries(fx: &Fixture) -> Vec<PathBuf> {
    std::fs::read_dir(fx.tmp.path().join("root/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[test]
fn secret_content_is_mounted_but_never_keyed_or_recorded() {
    let fx = Fixture::new();
    let exec = Arc::new(SecretReader::default());
    let def = step(vec![Mount::secret(
        "/run/secrets/token",
        secret_mount("token", false),
    )]);
    let with = |value: &str| {
        Secrets::new().with_secret("token", SecretSource::Value(SecretValue::new(value)))
    };

    let first = rt()
        .block_on(solver(&fx, &exec, with("first-s3cr3t")).solve(&def, &NullReporter))
        .unwrap();
    let seen = exec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.dest, "/run/secrets/token");
    assert_eq!(seen[0].1.as_deref(), Some("first-s3cr3t"));
    // The file existed only during the solve.
    let host = seen[0].0.host_source.clone().unwrap();
    assert!(!host.exists(), "{host:?} outlived the solve");
    assert!(tmp_entries(&fx).is_empty(), "{:?}", tmp_entries(&fx));

    // Another value under the same id: same key, so a cache hit; the step does not run.
    let second = rt()
        .block_on(solver(&fx, &exec, with("second-s3cr3t")).solve(&def, &NullReporter))
        .unwrap();
    assert_eq!(first.head_key, second.head_key);
    assert_eq!(exec.seen.lock().unwrap().len(), 1);

    for record in fx.store.cache_records().unwrap() {
        assert!(!record.preimage.contains("s3cr3t"), "{}", record.preimage);
        assert!(!record.preimage.contains(&*host.to_string_lossy()));
    }
}

#[test]
fn file_secrets_and_ssh_agents_are_passed_as_their_host_paths() {
    let fx = Fixture::new();
    let exec = Arc::new(SecretReader::default());
    let file = fx.tmp.path().join("npmrc");
    std::fs::write(&file, "registry=secret").unwrap();
    let socket = fx.tmp.path().join("agent.sock");
    let def = step(vec![
        Mount::secret("/root/.npmrc", secret_mount("npmrc", false)),
        Mount::ssh("/run/buildkit/ssh_agent.0", secret_mount("default", false)),
    ]);
    let secrets = Secrets::new()
        .with_secret("npmrc", SecretSource::File(file.clone()))
        .with_ssh("default", &socket);
    rt().block_on(solver(&fx, &exec, secrets).solve(&def, &NullReporter))
        .unwrap();
    let seen = exec.seen.lock().unwrap().clone();
    let sources: Vec<(&str, Option<&PathBuf>)> = seen
        .iter()
        .map(|(m, _)| (m.dest.as_str(), m.host_source.as_ref()))
        .collect();
    assert_eq!(
        sources,
        [
            ("/root/.npmrc", Some(&file)),
            ("/run/buildkit/ssh_agent.0", Some(&socket))
        ]
    );
    // The user's own file is left alone.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "registry=secret");
}

#[test]
fn a_missing_optional_secret_skips_the_mount() {
    let fx = Fixture::new();
    let exec = Arc::new(SecretReader::default());
    let def = step(vec![
        Mount::secret("/run/secrets/token", secret_mount("token", true)),
        Mount::tmpfs("/scratch", None),
    ]);
    rt().block_on(solver(&fx, &exec, Secrets::new()).solve(&def, &NullReporter))
        .unwrap();
    let dests: Vec<String> = exec
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(m, _)| m.dest.clone())
        .collect();
    assert_eq!(dests, ["/scratch"]);
}

#[test]
fn a_missing_required_secret_fails_naming_its_id() {
    let fx = Fixture::new();
    let exec = Arc::new(SecretReader::default());
    let def = step(vec![Mount::secret(
        "/run/secrets/token",
        secret_mount("api-token", false),
    )]);
    let other =
        Secrets::new().with_secret("unrelated", SecretSource::Value(SecretValue::new("hidden")));
    let err = rt()
        .block_on(solver(&fx, &exec, other).solve(&def, &NullReporter))
        .unwrap_err();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(message.contains("\"api-token\""), "{message}");
    assert!(!message.contains("hidden"), "{message}");
    assert!(exec.seen.lock().unwrap().is_empty());
    assert!(tmp_entries(&fx).is_empty(), "{:?}", tmp_entries(&fx));
}
