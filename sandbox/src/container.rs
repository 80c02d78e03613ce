//! The container side: what pid 1 of the step's pid namespace does before exec'ing the
//! command. Runs in the helper's forked child; any error is returned as text for the helper.
// `unsafe` here: close_range(2) has no wrapper that leaves the descriptors open.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

use crate::cgroup::Cgroup;
use crate::init::ChildMsg;
use crate::plan::{self, Layout};
use crate::spec::{DEFAULT_PATH, InitSpec};
use crate::syscall::linux::LinuxSyscall;
use crate::{caps, net, user};

/// Sets up the sandbox and execs; returns only on failure, with the message.
pub(crate) fn run(
    spec: &InitSpec,
    layout: &Layout,
    cgroup: Option<&Cgroup>,
    report: &OwnedFd,
) -> String {
    match setup_and_exec(spec, layout, cgroup, report) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn setup_and_exec(
    spec: &InitSpec,
    layout: &Layout,
    cgroup: Option<&Cgroup>,
    report: &OwnedFd,
) -> Result<Never, String> {
    // If the helper dies, so does pid 1, and with it every process of the namespace
    // (pid_namespaces(7)). A helper that died before the prctl (prctl(2), PR_SET_PDEATHSIG)
    // is noticed through the report pipe: its read end is gone, so the write end polls POLLERR
    // (getppid is no help: it is 0 for pid 1 of a new namespace).
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    let mut fds = [nix::poll::PollFd::new(
        report.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
    if fds[0]
        .revents()
        .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLERR))
    {
        return Err("the sandbox helper exited".into());
    }
    if let Some(cg) = cgroup {
        cg.join()
            .map_err(|e| format!("join the step's cgroup: {e}"))?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if spec.isolated_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // The mount namespace is this child's own, not the helper's: pivot_root changes the root
    // of every process in the namespace (pivot_root(2)), and the helper must keep the host's
    // to clean up after the step.
    nix::sched::unshare(flags).map_err(|e| format!("unshare namespaces: {e}"))?;

    let calls = plan::plan(spec, layout);
    let mut sys = LinuxSyscall::default();
    let stubs = plan::apply(&calls, &mut sys).map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(&ChildMsg::Stubs(stubs)).map_err(|e| e.to_string())?;
    line.push(b'\n');
    File::from(report.try_clone().map_err(|e| e.to_string())?)
        .write_all(&line)
        .map_err(|e| e.to_string())?;

    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    if spec.isolated_network {
        net::loopback_up().map_err(|e| format!("bring up lo: {e}"))?;
    }

    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let group = std::fs::read_to_string("/etc/group").ok();
    let who = user::resolve(&spec.user, passwd.as_deref(), group.as_deref())
        .map_err(|e| e.to_string())?;
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", who.home));
    }

    // The working directory is created (as root, like runc) if the image lacks it; unlike a
    // mount point it is part of the step's result.
    let cwd = Path::new(&spec.cwd);
    std::fs::create_dir_all(cwd)
        .map_err(|e| format!("create working directory {}: {e}", spec.cwd))?;
    nix::unistd::chdir(cwd).map_err(|e| format!("chdir {}: {e}", spec.cwd))?;
    let program = find_program(&spec.args, &env)?;

    drop_privileges(spec, &who)?;

    // Everything but stdio is closed at exec: the socket, lock and mount descriptors are the
    // helper's business. CLOSE_RANGE_CLOEXEC marks instead of closing, so the report pipe
    // still works until the exec succeeds (close_range(2), Linux 5.11).
    // SAFETY: only sets the close-on-exec flag; no descriptor is closed under anyone.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let argv: Vec<CString> = spec
        .args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    let path = CString::new(program.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(format!("exec {}: {err}", program.display()))
}

fn drop_privileges(spec: &InitSpec, who: &user::ExecUser) -> Result<(), String> {
    use ::caps::CapSet;
    let keep = caps::for_step(spec.insecure);
    // The bounding set limits what any later exec can ever gain; it can only be lowered, and
    // only while we still have CAP_SETPCAP (capabilities(7)).
    for cap in ::caps::all() {
        if !keep.contains(&cap) && ::caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            ::caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("drop capability {cap}: {e}"))?;
        }
    }
    let groups: Vec<Gid> = who.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let (uid, gid) = (Uid::from_raw(who.uid), Gid::from_raw(who.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setgid {}: {e}", who.gid))?;
    // Changing to a non-zero uid clears the permitted and effective sets (capabilities(7),
    // "Effect of user ID changes"): a non-root step runs with no capabilities, as in docker.
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setuid {}: {e}", who.uid))?;
    let caps_now = if who.uid == 0 {
        keep
    } else {
        Default::default()
    };
    ::caps::set(None, CapSet::Inheritable, &Default::default())
        .map_err(|e| format!("capabilities: {e}"))?;
    ::caps::set(None, CapSet::Effective, &caps_now).map_err(|e| format!("capabilities: {e}"))?;
    ::caps::set(None, CapSet::Permitted, &caps_now).map_err(|e| format!("capabilities: {e}"))?;
    let _ = ::caps::clear(None, CapSet::Ambient);
    // no_new_privs: setuid binaries and file capabilities cannot raise privileges in the step
    // (prctl(2), PR_SET_NO_NEW_PRIVS). Insecure steps keep them, as `--security=insecure` asks.
    if !spec.insecure {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }
    // The credential change above cleared the parent-death signal (prctl(2)); set it again.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    Ok(())
}

/// `args[0]` looked up in the step's `PATH` (not the helper's), like execvp would inside the
/// container.
fn find_program(args: &[String], env: &[String]) -> Result<PathBuf, String> {
    let name = args.first().ok_or("no command given")?;
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(&DEFAULT_PATH[5..]);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if let Ok(md) = std::fs::metadata(&candidate)
            && md.is_file()
            && md.permissions().mode() & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: \"{name}\": executable file not found in $PATH"
    ))
}
