//! A `RUN` step is isolated from the host: its own processes, hostname and (with
//! `--network=none`) network; no store or host path; no mounting; kernel knobs read-only.
//! The pids limit, cancellation and tmpfs limits are driven directly in
//! `sandbox/tests/native.rs`.

use crate::harness::{TestDir, text};
use crate::run::{BASE, base_root, build_in, build_ok, unique};

/// Builds a one-`RUN` Dockerfile; returns the step's output lines (progress prefixes cut).
fn run_lines(dir: &TestDir, run: &str) -> Vec<String> {
    let out = build_in(
        base_root(),
        dir,
        &format!("FROM {BASE}\nRUN {run}\n"),
        &["--no-cache"],
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // "#3 0.123 text" → "text"
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?;
            let (_, rest) = rest.split_once(' ')?;
            let (time, text) = rest.split_once(' ')?;
            time.parse::<f64>().ok().map(|_| text.to_owned())
        })
        .collect()
}

#[test]
fn a_run_sees_only_its_own_processes() {
    let dir = TestDir::new();
    let lines = run_lines(&dir, "echo pid=$$ && set -- /proc/[0-9]* && echo procs=$#");
    assert_eq!(lines[0], "pid=1");
    let n: u32 = lines[1].strip_prefix("procs=").unwrap().parse().unwrap();
    assert!(n <= 2, "{lines:?}");
}

#[test]
fn a_run_cannot_see_or_write_the_store_or_the_host() {
    let dir = TestDir::new();
    let root = base_root().display().to_string();
    let here = dir.path().display().to_string();
    let host_tmp_marker = std::env::temp_dir().join(unique("tmp-marker"));
    let lines = run_lines(
        &dir,
        &format!(
            "test ! -e {root}/metadata.db && echo store-hidden; \
             test ! -e {here} && echo host-hidden; \
             ls /tmp 2>/dev/null | wc -l; \
             mkdir -p /tmp && echo x > {marker} && echo wrote-tmp; \
             (mount -t tmpfs none /mnt) 2>/dev/null || echo no-mount; \
             (echo 1 > /proc/sys/kernel/panic) 2>/dev/null || echo sysctl-read-only",
            marker = host_tmp_marker.display()
        ),
    );
    assert_eq!(
        lines,
        [
            "store-hidden",
            "host-hidden",
            "0",
            "wrote-tmp",
            "no-mount",
            "sysctl-read-only"
        ]
    );
    // Writing the container's /tmp left the host's alone.
    assert!(!host_tmp_marker.exists());
}

#[test]
fn a_run_sees_the_sandbox_hostname() {
    let dir = TestDir::new();
    let lines = run_lines(
        &dir,
        "hostname && cat /etc/hostname && grep -c buildkitsandbox /etc/hosts",
    );
    assert_eq!(lines, ["buildkitsandbox", "buildkitsandbox", "1"]);
}

#[test]
fn network_none_has_no_route_and_only_loopback() {
    let dir = TestDir::new();
    let lines = run_lines(
        &dir,
        "--network=none ip -o link | wc -l && ip route | wc -l && \
         (wget -q -T 2 -O /dev/null http://1.1.1.1/ 2>/dev/null && echo reached || echo unreachable)",
    );
    assert_eq!(lines, ["1", "0", "unreachable"]);
}

#[test]
fn ctrl_c_cancels_the_build_kills_the_step_and_keeps_the_steps_before_it() {
    cancel_a_running_step("INT", 130);
}

#[test]
fn sigterm_cancels_the_build_kills_the_step_and_keeps_the_steps_before_it() {
    cancel_a_running_step("TERM", 143);
}

/// Starts a build whose second `RUN` sleeps (in two processes), sends `signal` to dray's
/// process group once both sleepers run, and checks: dray exits with `code` saying "build
/// cancelled", no sleeper survives, nothing the killed step wrote is in the store, and a
/// rebuild reuses the step before it.
fn cancel_a_running_step(signal: &str, code: i32) {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let dir = TestDir::new();
    let marker = format!("{}", std::process::id() * 13 + 29 + code as u32);
    let first = format!("FROM {BASE}\nRUN echo {marker} > /first\n");
    dir.write(
        "ctx/Dockerfile",
        format!("{first}RUN touch /killed-{marker} && (sleep {marker} & sleep {marker})\n"),
    );
    let _ = base_root();
    // `env --default-signal=INT`: a process started in the background by a non-interactive
    // shell inherits SIGINT *ignored* (POSIX), and so would dray; a terminal's foreground job
    // has the default action, which is what this test is about.
    let mut child = std::process::Command::new("env")
        .arg("--default-signal=INT")
        .arg(assert_cmd::cargo::cargo_bin("dray"))
        .current_dir(dir.path())
        .arg("--root")
        .arg(base_root())
        .args(["build", "--progress", "plain", "ctx"])
        .stderr(std::process::Stdio::piped())
        // Its own process group, as a terminal's foreground job is: Ctrl-C signals the group.
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while sleepers(&marker) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "dray ended early");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("build cancelled"),
        "one line at the end: {stderr}"
    );
    // dray waited for the step's teardown before exiting.
    assert_eq!(sleepers(&marker), 0, "the step's processes outlived dray");
    let leftovers: Vec<_> = crate::run::walkdir(base_root().join("snapshots"))
        .into_iter()
        .filter(|p| p.ends_with(format!("killed-{marker}")))
        .collect();
    assert_eq!(leftovers, Vec::<std::path::PathBuf>::new());

    let progress = build_ok(base_root(), &dir, &format!("{first}RUN true\n"), &[]);
    assert_eq!(
        crate::run::steps_with(&progress, "CACHED"),
        std::collections::BTreeSet::from([format!("[2/3] RUN echo {marker} > /first")]),
        "{progress}"
    );
}

/// Host processes running `sleep <marker>`.
fn sleepers(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| *c == format!("sleep\0{marker}\0").into_bytes())
        .count()
}
