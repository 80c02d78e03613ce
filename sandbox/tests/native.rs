//! The native executor against real namespaces and overlayfs (CI runs as root; these never
//! skip). The root filesystem is Debian's static busybox in a plain directory, so no store is
//! involved: the executor takes plain paths.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dray_llb::{Digest, ExecMeta, MountKind, NetMode, SecretMount, SecurityMode, Sharing};
use dray_sandbox::NativeExecutor;
use dray_solver::{ExecSpec, Executor, LogSink, LogStream, MountSpec, OpError, RootFs};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const BUSYBOX: &str = "/bin/busybox";

/// A busybox root filesystem (one lower layer) and a fresh upper/work pair.
struct Root {
    dir: TempDir,
}

impl Root {
    fn new() -> Self {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: install busybox-static (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("lower/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        let list = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
            }
        }
        std::fs::create_dir_all(dir.path().join("upper")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Root { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn spec(&self, script: &str) -> ExecSpec {
        ExecSpec {
            vertex: Digest::of(script),
            name: script.to_owned(),
            meta: ExecMeta {
                args: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: String::new(),
                hostname: None,
                proxy_env: vec![],
            },
            network: NetMode::Sandbox,
            security: SecurityMode::Sandbox,
            rootfs: RootFs {
                lowers: vec![self.path("lower")],
                upper: self.path("upper"),
                work: self.path("work"),
            },
            mounts: vec![],
        }
    }

    /// The upper directory's entries, relative.
    fn upper_entries(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.path("upper"), &self.path("upper"), &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        out.push(p.strip_prefix(base).unwrap().display().to_string());
        if e.file_type().unwrap().is_dir() {
            walk(base, &p, out);
        }
    }
}

#[derive(Default)]
struct Logs(Mutex<Vec<u8>>);

impl LogSink for Logs {
    fn write(&self, _stream: LogStream, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn executor() -> NativeExecutor {
    NativeExecutor::new(env!("CARGO_BIN_EXE_dray-sandbox-init"))
}

async fn run(spec: &ExecSpec) -> (Result<(), OpError>, String) {
    let logs = Logs::default();
    let r = executor().run(spec, &logs, &CancellationToken::new()).await;
    (r, logs.text())
}

async fn run_ok(spec: &ExecSpec) -> String {
    let (r, out) = run(spec).await;
    if let Err(e) = r {
        panic!("step failed: {e:?}\n{out}");
    }
    out
}

#[tokio::test]
async fn output_streams_and_writes_land_in_the_upper_dir_only() {
    let root = Root::new();
    let out = run_ok(&root.spec("echo hello; echo oops >&2; echo data > /file")).await;
    assert!(out.contains("hello\n") && out.contains("oops\n"), "{out}");
    // Mount points (/proc, /dev, /sys, /etc/…) were stubs in a root that had none: all gone.
    assert_eq!(root.upper_entries(), ["file"]);
    assert!(!root.path("lower/file").exists());
}

#[tokio::test]
async fn a_non_zero_exit_gives_the_code_and_the_last_lines() {
    let root = Root::new();
    let (r, _) = run(&root.spec("for i in $(seq 1 30); do echo line $i; done; exit 3")).await;
    match r {
        Err(OpError::ExitCode { code, tail, args }) => {
            assert_eq!(code, 3);
            assert_eq!(tail.len(), 20);
            assert_eq!(tail.last().unwrap(), "line 30");
            assert_eq!(args[0], "/bin/sh");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let root = Root::new();
    let mut spec = root.spec("");
    spec.meta.args = vec!["no-such-program".into()];
    let (r, _) = run(&spec).await;
    let err = format!("{:?}", r.unwrap_err());
    assert!(
        err.contains("no-such-program") && err.contains("not found"),
        "{err}"
    );
}

#[tokio::test]
async fn the_process_is_pid_1_and_sees_only_its_own_processes() {
    let root = Root::new();
    let out = run_ok(&root.spec("echo pid=$$; ls /proc | grep -c '^[0-9]'")).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    // sh, ls and grep (and maybe the subshell): nothing from the host.
    let n: u32 = lines[1].parse().unwrap();
    assert!(n <= 4, "{out}");
}

#[tokio::test]
async fn the_configured_hostname_is_seen_everywhere() {
    let root = Root::new();
    let mut spec = root.spec("hostname; cat /etc/hostname; grep -c dray-test /etc/hosts");
    spec.meta.hostname = Some("dray-test".into());
    assert_eq!(run_ok(&spec).await, "dray-test\ndray-test\n1\n");
    let out = run_ok(&root.spec("hostname")).await;
    assert_eq!(out, "buildkitsandbox\n");
}

#[tokio::test]
async fn network_none_has_only_loopback_and_no_route() {
    let root = Root::new();
    let mut spec = root.spec("ip -o link | wc -l; ip -o link show lo; ip route | wc -l; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok");
    spec.network = NetMode::None;
    let out = run_ok(&spec).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert!(lines[1].contains("lo:") && lines[1].contains("UP"), "{out}");
    assert_eq!(lines[2], "0", "{out}");
    assert_eq!(lines[3], "ping-ok", "{out}");
}

#[tokio::test]
async fn the_host_is_out_of_reach() {
    let root = Root::new();
    let host_dir = root.path("lower");
    let script = format!(
        "test ! -e {host}; echo host=$?; \
         mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; \
         (echo b > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?; \
         touch /sys/x 2>/dev/null; echo sys=$?; \
         grep CapEff /proc/self/status",
        host = host_dir.display()
    );
    let out = run_ok(&root.spec(&script)).await;
    assert!(out.contains("host=0\n"), "{out}");
    assert!(
        out.contains("mount=1\n") || out.contains("mount=255\n"),
        "{out}"
    );
    assert!(
        !out.contains("sysrq=0\n") && !out.contains("sys=0\n"),
        "{out}"
    );
    // Docker's default set: no CAP_SYS_ADMIN (bit 21).
    let eff = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap();
    let eff = u64::from_str_radix(eff, 16).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(eff & (1 << 21), 0, "{out}");
    assert_eq!(eff, 0xa80425fb, "{out}");
}

#[tokio::test]
async fn users_resolve_through_the_rootfs_passwd_and_group() {
    let root = Root::new();
    let etc = root.path("lower/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:App:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\napp:x:1234:\nextra:x:77:app\n",
    )
    .unwrap();
    let mut spec = root.spec("id -u; id -g; id -G; echo $HOME; pwd; grep CapEff /proc/self/status");
    spec.meta.user = "app".into();
    spec.meta.cwd = "/work/dir".into();
    let out = run_ok(&spec).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        ["1234", "1234", "1234 77", "/home/app", "/work/dir"],
        "{out}"
    );
    assert!(lines[5].ends_with("0000000000000000"), "{out}");
    // The missing working directory was created, and is part of the result.
    assert!(root.path("upper/work/dir").is_dir());
    spec.meta.user = "nobody".into();
    let err = format!("{:?}", run(&spec).await.0.unwrap_err());
    assert!(err.contains("unable to find user nobody"), "{err}");
}

#[tokio::test]
async fn a_full_shm_or_tmpfs_hits_its_limit_not_the_host() {
    let root = Root::new();
    let mut spec = root.spec(
        "dd if=/dev/zero of=/dev/shm/big bs=1M count=100 2>/dev/null; echo shm=$?; \
         dd if=/dev/zero of=/t/big bs=1M count=3 2>/dev/null; echo tmpfs=$?",
    );
    spec.mounts.push(mount(
        "/t",
        MountKind::Tmpfs {
            size: Some(1 << 20),
        },
    ));
    let out = run_ok(&spec).await;
    assert_eq!(out, "shm=1\ntmpfs=1\n");
    assert_eq!(root.upper_entries(), Vec::<String>::new());
}

#[tokio::test]
async fn many_forks_hit_the_pids_limit_and_nothing_survives_the_step() {
    let root = Root::new();
    let marker = format!("{}", std::process::id() * 7 + 13);
    let spec = root.spec(&format!(
        "i=0; while [ $i -lt 300 ]; do sleep {marker} & i=$((i+1)); done"
    ));
    let logs = Logs::default();
    let r = executor()
        .with_pids_limit(Some(100))
        .run(&spec, &logs, &CancellationToken::new())
        .await;
    // 300 sleeps do not fit in 100 processes: busybox sh gives up when a fork fails.
    match r {
        Err(OpError::ExitCode { tail, .. }) => {
            assert!(tail.iter().any(|l| l.contains("can't fork")), "{tail:?}");
        }
        other => panic!("{other:?}: {}", logs.text()),
    }
    assert_eq!(
        sleepers(&marker),
        0,
        "background processes outlived the step"
    );
}

fn sleepers(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c) == format!("sleep\0{marker}\0"))
        .count()
}

#[tokio::test]
async fn cancelling_kills_the_whole_tree_promptly() {
    let root = Root::new();
    let marker = format!("{}", std::process::id() * 11 + 17);
    let spec = root.spec(&format!("sleep {marker} & sleep {marker} & echo up; wait"));
    let logs = Logs::default();
    let cancel = CancellationToken::new();
    let exec = executor();
    let run = exec.run(&spec, &logs, &cancel);
    let canceller = async {
        while !logs.text().contains("up") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sleepers(&marker), 2);
        cancel.cancel();
        Instant::now()
    };
    let (r, cancelled_at) = tokio::join!(run, canceller);
    assert!(r.is_err());
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(sleepers(&marker), 0);
}

fn mount(dest: &str, kind: MountKind) -> MountSpec {
    MountSpec {
        dest: dest.into(),
        lowers: vec![],
        local_dir: None,
        excluded: vec![],
        selector: None,
        readonly: false,
        kind,
        cache_dir: None,
        host_source: None,
    }
}

#[tokio::test]
async fn secrets_are_mounted_read_only_with_their_owner_and_never_reach_the_layer() {
    let root = Root::new();
    let secret = root.path("secret.txt");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let mut spec = root.spec(
        "cat /run/secrets/tok; echo; stat -c '%u:%g %a' /run/secrets/tok; \
         (echo x > /run/secrets/tok) 2>/dev/null; echo write=$?",
    );
    let mut m = mount(
        "/run/secrets/tok",
        MountKind::Secret(SecretMount {
            id: "tok".into(),
            uid: 1000,
            gid: 1001,
            mode: 0o440,
            optional: false,
        }),
    );
    m.host_source = Some(secret.clone());
    spec.mounts.push(m);
    let out = run_ok(&spec).await;
    assert_eq!(out, "s3cr3t-value\n1000:1001 440\nwrite=1\n");
    assert_eq!(root.upper_entries(), Vec::<String>::new());
    // The host file is untouched.
    let md = std::fs::metadata(&secret).unwrap();
    assert_eq!((md.uid(), md.permissions().mode() & 0o777), (0, 0o644));
}

#[tokio::test]
async fn a_missing_required_secret_is_an_error_naming_it() {
    let root = Root::new();
    let mut spec = root.spec("true");
    spec.mounts.push(mount(
        "/run/secrets/api",
        MountKind::Secret(SecretMount {
            id: "api-key".into(),
            uid: 0,
            gid: 0,
            mode: 0o400,
            optional: false,
        }),
    ));
    let err = run(&spec).await.0.unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("secret \"api-key\" is required"), "{text}");
    // Optional and missing: nothing is mounted, the step runs.
    if let MountKind::Secret(s) = &mut spec.mounts[0].kind {
        s.optional = true;
    }
    run_ok(&spec).await;
}

#[tokio::test]
async fn an_ssh_agent_socket_is_reachable() {
    let root = Root::new();
    let sock = root.path("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut spec = root.spec("test -S /run/buildkit/ssh_agent.0 && echo socket");
    let mut m = mount(
        "/run/buildkit/ssh_agent.0",
        MountKind::Ssh(SecretMount {
            id: "default".into(),
            uid: 0,
            gid: 0,
            mode: 0o600,
            optional: false,
        }),
    );
    m.host_source = Some(sock);
    spec.mounts.push(m);
    assert_eq!(run_ok(&spec).await, "socket\n");
    assert_eq!(root.upper_entries(), Vec::<String>::new());
}

#[tokio::test]
async fn bind_mounts_are_read_only_or_write_to_a_throwaway_layer() {
    let root = Root::new();
    let ctx = root.path("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/f"), "from context").unwrap();
    let layer = root.path("layer");
    std::fs::create_dir_all(layer.join("out")).unwrap();
    std::fs::write(layer.join("out/g"), "from a stage").unwrap();
    let mut spec = root.spec(
        "cat /ro/f; echo; touch /ro/new 2>/dev/null; echo ro=$?; \
         cat /st/g; echo; echo w > /rw/new && cat /rw/new",
    );
    let mut ro = mount("/ro", MountKind::Bind);
    ro.local_dir = Some(ctx.clone());
    ro.selector = Some("/sub".into());
    ro.readonly = true;
    let mut st = mount("/st", MountKind::Bind);
    st.lowers = vec![layer.clone()];
    st.selector = Some("out".into());
    st.readonly = true;
    let mut rw = mount("/rw", MountKind::Bind);
    rw.local_dir = Some(ctx.clone());
    spec.mounts = vec![ro, st, rw];
    let out = run_ok(&spec).await;
    assert_eq!(out, "from context\nro=1\nfrom a stage\nw\n");
    assert!(!ctx.join("new").exists() && !ctx.join("sub/new").exists());
    assert_eq!(root.upper_entries(), Vec::<String>::new());
}

#[tokio::test]
async fn a_selector_cannot_escape_its_source() {
    let root = Root::new();
    let ctx = root.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::os::unix::fs::symlink("/", ctx.join("escape")).unwrap();
    let mut spec = root.spec("ls /m | grep -c . || true");
    let mut m = mount("/m", MountKind::Bind);
    m.local_dir = Some(ctx.clone());
    m.selector = Some("/escape".into());
    m.readonly = true;
    spec.mounts = vec![m];
    // The symlink resolves to the context's own root (RESOLVE_IN_ROOT): just "escape".
    assert_eq!(run_ok(&spec).await, "1\n");
}

#[tokio::test]
async fn cache_mounts_persist_and_private_ones_split_under_concurrency() {
    let root = Root::new();
    let cache = root.path("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cache_mount = |sharing| {
        let mut m = mount(
            "/cache",
            MountKind::Cache {
                id: "c".into(),
                sharing,
            },
        );
        m.cache_dir = Some(cache.clone());
        m
    };
    let mut spec = root.spec("echo $$ >> /cache/runs; wc -l < /cache/runs");
    spec.mounts = vec![cache_mount(Sharing::Shared)];
    assert_eq!(run_ok(&spec).await, "1\n");
    assert_eq!(run_ok(&spec).await, "2\n");
    assert_eq!(root.upper_entries(), Vec::<String>::new());

    // Two private users at once: the second gets a directory of its own. The first holds the
    // directory until the test says so, so there is no timing to get wrong.
    let mut slow =
        root.spec("touch /cache/started; while [ ! -e /cache/release ]; do sleep 0.05; done");
    slow.mounts = vec![cache_mount(Sharing::Private)];
    let root2 = Root::new();
    let mut other = root2.spec("ls /cache | wc -l");
    other.mounts = vec![cache_mount(Sharing::Private)];
    let (a, b) = tokio::join!(run_ok(&slow), async {
        while !cache.join("started").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let out = run_ok(&other).await;
        std::fs::write(cache.join("release"), "").unwrap();
        out
    });
    assert_eq!(a, "");
    assert_eq!(b, "0\n", "the private copy is empty");
    let mut private = cache.clone().into_os_string();
    private.push(".private-1");
    assert!(Path::new(&private).is_dir());

    // Locked users take turns.
    let mut locked = root.spec("echo start >> /cache/order; sleep 0.5; echo end >> /cache/order");
    locked.mounts = vec![cache_mount(Sharing::Locked)];
    let mut locked2 = root2.spec("echo start >> /cache/order; sleep 0.5; echo end >> /cache/order");
    locked2.mounts = vec![cache_mount(Sharing::Locked)];
    tokio::join!(run_ok(&locked), run_ok(&locked2));
    let order = std::fs::read_to_string(cache.join("order")).unwrap();
    assert_eq!(order, "start\nend\nstart\nend\n");
}

#[tokio::test]
async fn a_chain_deeper_than_one_page_of_options_mounts() {
    let root = Root::new();
    let mut lowers = Vec::new();
    for i in 0..300 {
        let dir = root.path(&format!("layers/{i:040}/fs"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), "").unwrap();
        lowers.push(dir);
    }
    lowers.reverse();
    let mut spec = root.spec("ls / | grep -c '^f'");
    spec.rootfs.lowers.splice(0..0, lowers);
    assert_eq!(run_ok(&spec).await, "300\n");
}

#[tokio::test]
async fn mount_points_in_existing_directories_leave_no_copied_up_parent() {
    let root = Root::new();
    let etc = root.path("lower/etc/ssl");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(root.path("lower/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let mut spec = root.spec("cat /etc/hosts > /dev/null && ls /etc/ssl/certs");
    let cache = root.path("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut m = mount(
        "/etc/ssl/certs",
        MountKind::Cache {
            id: "certs".into(),
            sharing: Sharing::Shared,
        },
    );
    m.cache_dir = Some(cache);
    spec.mounts.push(m);
    run_ok(&spec).await;
    // /etc and /etc/ssl were copied up to hold the stubs; with the stubs gone and their times
    // restored they are identical to the lower ones, so they are gone too.
    assert_eq!(root.upper_entries(), Vec::<String>::new());

    // A directory the step really changed stays, with the step's change.
    let spec = root.spec("touch /etc/new");
    run_ok(&spec).await;
    assert_eq!(root.upper_entries(), ["etc", "etc/new"]);
}
