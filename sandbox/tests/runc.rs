//! The runc backend running real steps through the `Executor` trait, over a busybox rootfs
//! this test builds from Debian's `busybox-static`. Needs root and `/usr/sbin/runc` (CI has
//! both); nothing here is skipped.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dray_llb::{Digest, ExecMeta, MountKind, NetMode, SecretMount, SecurityMode};
use dray_sandbox::runc::RuncExecutor;
use dray_solver::{ExecSpec, Executor, LogSink, LogStream, MountSpec, OpError, RootFs};
use tokio_util::sync::CancellationToken;

/// A test's directories: a busybox lower, a fresh upper and work dir, runc's state.
struct Fixture {
    tmp: tempfile::TempDir,
    lowers: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    executor: RuncExecutor,
}

/// The applets the tests use, as symlinks to `/bin/busybox`.
const APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "cat", "ls", "id", "hostname", "env", "pwd", "sleep", "rm",
    "mkdir", "touch", "stat", "test", "printf", "wc",
];

/// A rootfs with only `bin/` (busybox and its applets): no `/proc`, `/dev`, `/sys` or `/etc`.
fn busybox_layer(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
}

/// A fuller base: busybox plus `/etc` with users and groups, `/proc`, `/dev`, `/sys`, `/tmp`.
fn base_layer(dir: &Path) {
    busybox_layer(dir);
    for d in ["etc", "proc", "dev", "sys", "tmp", "home/builder"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nbuilder:x:1000:\nwheel:x:10:builder\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/hosts"), "# from the image\n").unwrap();
    std::fs::write(dir.join("etc/old"), "old\n").unwrap();
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::write(dir.join("data/a"), "a\n").unwrap();
    std::fs::write(dir.join("data/sub/b"), "b\n").unwrap();
}

impl Fixture {
    fn new(make_lower: fn(&Path)) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        make_lower(&lower);
        let (upper, work) = (tmp.path().join("upper"), tmp.path().join("work"));
        std::fs::create_dir(&upper).unwrap();
        std::fs::create_dir(&work).unwrap();
        let executor = RuncExecutor::new(RuncExecutor::DEFAULT_RUNC, tmp.path().join("state"));
        Fixture {
            lowers: vec![lower],
            upper,
            work,
            executor,
            tmp,
        }
    }

    fn spec(&self, script: &str) -> ExecSpec {
        ExecSpec {
            vertex: Digest::of(script),
            name: format!("RUN {script}"),
            meta: ExecMeta {
                args: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: String::new(),
                hostname: None,
                proxy_env: Vec::new(),
            },
            network: NetMode::Sandbox,
            security: SecurityMode::Sandbox,
            rootfs: RootFs {
                lowers: self.lowers.clone(),
                upper: self.upper.clone(),
                work: self.work.clone(),
            },
            mounts: Vec::new(),
        }
    }

    async fn run(&self, spec: &ExecSpec) -> (Result<(), OpError>, Logs) {
        let logs = Logs::default();
        let result = self
            .executor
            .run(spec, &logs, &CancellationToken::new())
            .await;
        (result, logs)
    }

    /// Runs `spec`, which must succeed, and returns its stdout.
    async fn output(&self, spec: &ExecSpec) -> String {
        let (result, logs) = self.run(spec).await;
        if let Err(e) = result {
            panic!("{e}: {:?} / stderr {}", e, logs.text(LogStream::Stderr));
        }
        logs.text(LogStream::Stdout)
    }

    /// Every path in the upper dir, relative.
    fn upper_entries(&self) -> BTreeSet<String> {
        walk(&self.upper)
    }

    /// Nothing of the run is left on the host: no bundle, no mount, no container.
    fn assert_cleaned_up(&self) {
        let bundles = self.tmp.path().join("state/bundles");
        let left: Vec<_> = std::fs::read_dir(&bundles)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "bundles left: {left:?}");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let tmp = self.tmp.path().to_string_lossy().into_owned();
        assert!(
            !mountinfo.contains(&tmp),
            "mounts left under {tmp}:\n{mountinfo}"
        );
        let out = std::process::Command::new(RuncExecutor::DEFAULT_RUNC)
            .arg("--root")
            .arg(self.tmp.path().join("state/runc"))
            .args(["list", "-q"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    }
}

fn walk(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Collects a step's output per stream.
#[derive(Default)]
struct Logs(Mutex<Vec<(LogStream, Vec<u8>)>>);

impl LogSink for Logs {
    fn write(&self, stream: LogStream, bytes: &[u8]) {
        self.0.lock().unwrap().push((stream, bytes.to_vec()));
    }
}

impl Logs {
    fn text(&self, stream: LogStream) -> String {
        let chunks = self.0.lock().unwrap();
        let bytes: Vec<u8> = chunks
            .iter()
            .filter(|(s, _)| *s == stream)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        String::from_utf8(bytes).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_the_output_tail() {
    let f = Fixture::new(base_layer);
    let (ok, _) = f.run(&f.spec("true")).await;
    ok.unwrap();
    let (failed, _) = f.run(&f.spec("echo first; echo last >&2; exit 3")).await;
    match failed {
        Err(OpError::ExitCode { args, code, tail }) => {
            assert_eq!(code, 3);
            assert_eq!(args[2], "echo first; echo last >&2; exit 3");
            // Both streams reach the tail; their relative order is the pipes' race.
            let mut tail = tail;
            tail.sort();
            assert_eq!(tail, ["first", "last"]);
        }
        other => panic!("expected an exit code, got {other:?}"),
    }
    // A missing program is runc's error, not an exit code of the step.
    let mut spec = f.spec("");
    spec.meta.args = vec!["/bin/nope".into()];
    let (missing, _) = f.run(&spec).await;
    let err = missing.unwrap_err();
    assert!(matches!(err, OpError::Executor(_)), "{err:?}");
    let message = format!("{:?}", err);
    assert!(message.contains("nope"), "{message}");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_streamed_per_stream() {
    let f = Fixture::new(base_layer);
    let logs = Logs::default();
    let spec = f.spec("echo out1; echo err1 >&2; echo out2");
    f.executor
        .run(&spec, &logs, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(logs.text(LogStream::Stdout), "out1\nout2\n");
    assert_eq!(logs.text(LogStream::Stderr), "err1\n");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn env_cwd_and_user_by_name_and_number() {
    let f = Fixture::new(base_layer);
    let mut spec = f.spec("echo \"$FOO|$(pwd)|$(id -u):$(id -g)|$(id -G)|$HOME\"");
    spec.meta.env.push("FOO=bar baz".into());
    spec.meta
        .proxy_env
        .push("http_proxy=http://proxy:3128".into());
    spec.meta.cwd = "/data/sub".into();
    spec.meta.user = "builder".into();
    assert_eq!(
        f.output(&spec).await,
        "bar baz|/data/sub|1000:1000|1000 10|/home/builder\n"
    );
    spec.meta.user = "4242:77".into();
    spec.meta.args[2] = "echo $(id -u):$(id -g) $http_proxy".into();
    assert_eq!(f.output(&spec).await, "4242:77 http://proxy:3128\n");
    spec.meta.user = "nobody".into();
    let (err, _) = f.run(&spec).await;
    let err = format!("{:?}", err.unwrap_err());
    assert!(err.contains("nobody"), "{err}");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_working_directory_is_created_for_the_user() {
    let f = Fixture::new(base_layer);
    let mut spec = f.spec("pwd; touch file");
    spec.meta.cwd = "/made/here".into();
    spec.meta.user = "builder".into();
    assert_eq!(f.output(&spec).await, "/made/here\n");
    assert_eq!(
        f.upper_entries(),
        set(&["made", "made/here", "made/here/file"])
    );
    let meta = std::fs::metadata(f.upper.join("made/here")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 1000, 0o755)
    );
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostname_and_etc_files() {
    let f = Fixture::new(base_layer);
    let script = "hostname; cat /etc/hostname; cat /etc/hosts";
    let out = f.output(&f.spec(script)).await;
    assert!(
        out.starts_with("buildkitsandbox\nbuildkitsandbox\n127.0.0.1\tlocalhost buildkitsandbox\n"),
        "{out}"
    );
    let mut spec = f.spec(script);
    spec.meta.hostname = Some("box".into());
    let out = f.output(&spec).await;
    assert!(
        out.starts_with("box\nbox\n127.0.0.1\tlocalhost box\n"),
        "{out}"
    );
    // The binds are read-only, and the image's own /etc/hosts is untouched.
    let (err, _) = f.run(&f.spec("echo x >> /etc/hosts")).await;
    assert!(matches!(err, Err(OpError::ExitCode { .. })), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(f.lowers[0].join("etc/hosts")).unwrap(),
        "# from the image\n"
    );
    assert!(f.upper_entries().is_empty(), "{:?}", f.upper_entries());
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_has_only_loopback() {
    let f = Fixture::new(base_layer);
    let mut spec = f.spec("ls /sys/class/net");
    spec.network = NetMode::None;
    assert_eq!(f.output(&spec).await, "lo\n");
    // The default shares the host's network, which has more than `lo`.
    let host = f.output(&f.spec("ls /sys/class/net")).await;
    let host_devices = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(host.lines().count(), host_devices, "{host}");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_readable_but_never_in_the_layer() {
    let f = Fixture::new(base_layer);
    let secret = f.tmp.path().join("token");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let mut spec = f.spec(
        "cat /run/secrets/token; echo; stat -c '%a %u:%g' /run/secrets/token; \
         echo leak > /run/secrets/token || echo read-only",
    );
    spec.mounts.push(MountSpec {
        dest: "/run/secrets/token".into(),
        lowers: Vec::new(),
        local_dir: None,
        excluded: vec![],
        selector: None,
        readonly: true,
        kind: MountKind::Secret(SecretMount {
            id: "token".into(),
            uid: 1000,
            gid: 10,
            mode: 0o440,
            optional: false,
        }),
        cache_dir: None,
        host_source: Some(secret.clone()),
    });
    let logs = Logs::default();
    f.executor
        .run(&spec, &logs, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        logs.text(LogStream::Stdout),
        "s3cr3t-value\n440 1000:10\nread-only\n"
    );
    // The host file keeps its content and mode; the layer has no trace of the mount point.
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "s3cr3t-value");
    assert!(f.upper_entries().is_empty(), "{:?}", f.upper_entries());
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_kills_the_container_promptly() {
    let f = Arc::new(Fixture::new(base_layer));
    let cancel = CancellationToken::new();
    let spec = f.spec("echo started; sleep 300");
    let logs = Arc::new(Logs::default());
    let task = {
        let (f, cancel, logs) = (f.clone(), cancel.clone(), logs.clone());
        tokio::spawn(async move { f.executor.run(&spec, logs.as_ref(), &cancel).await })
    };
    // Cancel once the step is really running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logs.text(LogStream::Stdout).contains("started") {
        assert!(Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the executor did not stop after cancellation")
        .unwrap();
    // A liveness bound, not a benchmark: `sleep 300` was killed, not waited for.
    assert!(cancelled_at.elapsed() < Duration::from_secs(30));
    let err = result.unwrap_err();
    assert!(format!("{err:?}").contains("Cancelled"), "{err:?}");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_run_removes_its_container_and_mounts() {
    let f = Fixture::new(base_layer);
    let spec = f.spec("echo started; sleep 300");
    let logs = Logs::default();
    let cancel = CancellationToken::new();
    // Boxed, so that `drop` below really drops the future (as an aborted solve does).
    let mut run = Box::pin(f.executor.run(&spec, &logs, &cancel));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            r = run.as_mut() => panic!("the step ended early: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if logs.text(LogStream::Stdout).contains("started") {
            break;
        }
        assert!(Instant::now() < deadline, "the step never started");
    }
    drop(run);
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upper_dir_holds_exactly_the_changes() {
    let f = Fixture::new(base_layer);
    let script = "rm /etc/old && rm -r /data && mkdir /data && echo n > /data/new && \
                  echo hi > /hello && mkdir -p /tmp/x && touch /tmp/x/y";
    f.output(&f.spec(script)).await;
    assert_eq!(
        f.upper_entries(),
        set(&[
            "data", "data/new", "etc", "etc/old", "hello", "tmp", "tmp/x", "tmp/x/y"
        ])
    );
    let whiteout = std::fs::symlink_metadata(f.upper.join("etc/old")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    assert_eq!(
        xattr::get(f.upper.join("data"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        xattr::get(f.upper.join("tmp"), "trusted.overlay.opaque").unwrap(),
        None
    );
    // The copied-up /etc keeps the image's metadata.
    let lower_etc = std::fs::metadata(f.lowers[0].join("etc")).unwrap();
    let upper_etc = std::fs::metadata(f.upper.join("etc")).unwrap();
    assert_eq!(
        lower_etc.permissions().mode(),
        upper_etc.permissions().mode()
    );
    assert_eq!(
        std::fs::read_to_string(f.upper.join("hello")).unwrap(),
        "hi\n"
    );
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_points_leave_nothing_in_the_layer() {
    // A rootfs with only /bin: runc would create /proc, /dev, /sys, /etc/* and every RUN mount
    // target; all of them must stay out of the upper directory.
    let f = Fixture::new(busybox_layer);
    let input = f.tmp.path().join("input");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("sub/file"), "from input\n").unwrap();
    let cache = f.tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let mut spec = f.spec(
        "cat /src/file; echo cached > /var/cache/deep/c; ls /scratch; \
         echo discarded > /src/written; cat /src/written",
    );
    let mount = |dest: &str, kind: MountKind| MountSpec {
        dest: dest.into(),
        lowers: Vec::new(),
        local_dir: None,
        excluded: vec![],
        selector: None,
        readonly: false,
        kind,
        cache_dir: None,
        host_source: None,
    };
    spec.mounts.push(MountSpec {
        lowers: vec![input.clone()],
        selector: Some("/sub".into()),
        ..mount("/src", MountKind::Bind)
    });
    spec.mounts.push(MountSpec {
        cache_dir: Some(cache.clone()),
        ..mount(
            "/var/cache/deep",
            MountKind::Cache {
                id: "c".into(),
                sharing: Default::default(),
            },
        )
    });
    spec.mounts
        .push(mount("/scratch", MountKind::Tmpfs { size: None }));
    assert_eq!(f.output(&spec).await, "from input\ndiscarded\n");
    assert!(f.upper_entries().is_empty(), "{:?}", f.upper_entries());
    // The cache mount persisted; the bind's input did not change.
    assert_eq!(
        std::fs::read_to_string(cache.join("c")).unwrap(),
        "cached\n"
    );
    assert_eq!(walk(&input), set(&["sub", "sub/file"]));
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn layers_stack_top_first() {
    let f = Fixture::new(base_layer);
    let top = f.tmp.path().join("top");
    std::fs::create_dir_all(top.join("data")).unwrap();
    std::fs::write(top.join("data/a"), "from top\n").unwrap();
    let mut spec = f.spec("cat /data/a /data/sub/b");
    spec.rootfs.lowers.insert(0, top);
    assert_eq!(f.output(&spec).await, "from top\nb\n");
    f.assert_cleaned_up();
}

/// The `CapEff:` line of the step's `/proc/self/status`.
async fn effective_caps(f: &Fixture, security: SecurityMode) -> u64 {
    let mut spec = f.spec("cat /proc/self/status");
    spec.security = security;
    let status = f.output(&spec).await;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_are_dockers_defaults_unless_insecure() {
    let f = Fixture::new(base_layer);
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(
        effective_caps(&f, SecurityMode::Sandbox).await,
        0x0000_0000_a804_25fb
    );
    let insecure = effective_caps(&f, SecurityMode::Insecure).await;
    const CAP_SYS_ADMIN: u32 = 21;
    assert_ne!(insecure & (1 << CAP_SYS_ADMIN), 0, "{insecure:x}");
    f.assert_cleaned_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_cache_mounts_admit_one_step_at_a_time() {
    let f = Arc::new(Fixture::new(base_layer));
    let cache = f.tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    // `mkdir` fails when the other step is inside its critical section.
    let mut spec = f.spec("mkdir /cache/busy && sleep 0.5 && rmdir /cache/busy");
    spec.mounts.push(MountSpec {
        dest: "/cache".into(),
        lowers: Vec::new(),
        local_dir: None,
        excluded: vec![],
        selector: None,
        readonly: false,
        kind: MountKind::Cache {
            id: "shared-id".into(),
            sharing: dray_llb::Sharing::Locked,
        },
        cache_dir: Some(cache.clone()),
        host_source: None,
    });
    let steps: Vec<_> = (0..2)
        .map(|i| {
            // Each step its own upper and work directory, as two solver steps would have.
            let (f, mut spec) = (f.clone(), spec.clone());
            let own = f.tmp.path().join(format!("step{i}"));
            spec.rootfs.upper = own.join("upper");
            spec.rootfs.work = own.join("work");
            std::fs::create_dir_all(&spec.rootfs.upper).unwrap();
            std::fs::create_dir_all(&spec.rootfs.work).unwrap();
            tokio::spawn(async move { f.run(&spec).await.0 })
        })
        .collect();
    for step in steps {
        step.await.unwrap().unwrap();
    }
    assert!(walk(&cache).is_empty());
    f.assert_cleaned_up();
}
