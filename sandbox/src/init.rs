//! The init helper (`dray __sandbox-init`): a fresh single-threaded process, so forking here is
//! safe (the tokio parent never forks).
//!
//! In order:
//! 1. read the [`InitSpec`] from the socket on standard input (length-prefixed JSON);
//! 2. `setsid` (done first of all, before the spec arrives), so a terminal's Ctrl-C reaches
//!    only dray, which then closes the socket: the helper notices and kills the step instead
//!    of dying with it half set up;
//! 3. a private temp dir (the root mount point, `/etc` files, staging dirs), cache locks, the
//!    step's cgroup;
//! 4. `unshare(CLONE_NEWPID)` and fork: the child is pid 1 of the new pid namespace, sets up
//!    its mounts and execs the command (see `container`); it reports the mount points it
//!    created, or its error, over a close-on-exec pipe (EOF = exec happened);
//! 5. wait for the child's exit (a pidfd) or for the parent to cancel (a `kill` line or EOF on
//!    the socket); pid 1's exit takes the whole pid namespace with it;
//! 6. remove the stubs from the upper directory, the cgroup and the temp dir; answer with a
//!    [`Report`].
// `unsafe` here: fork(2). It is sound because this process has a single thread.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};

use crate::cgroup::Cgroup;
use crate::container;
use crate::error::SetupError;
use crate::etc;
use crate::plan::{Layout, Stubs};
use crate::spec::{InitSpec, Kind, Report};
use crate::stubs;

/// What the container child tells the helper before exec.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChildMsg {
    /// The mount points it created.
    Stubs(Stubs),
    /// Setup or exec failed.
    Error(String),
}

/// The helper's entry point. See the module docs.
pub fn init_main() -> i32 {
    // The socket arrived as fd 0. Move it off the standard descriptors (close-on-exec, so the
    // step never inherits it) and put /dev/null in its place.
    let sock = match take_stdin() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(io::stderr(), "dray sandbox init: {e}");
            return 1;
        }
    };
    // First thing, even before the spec (a spare helper waits for one, maybe through a
    // Ctrl-C): a session of our own, see `run`. Not fatal: fails only if we already lead one.
    let _ = nix::unistd::setsid();
    let mut sock = File::from(sock);
    let report = match read_spec(&mut sock) {
        Ok(spec) => match run(&spec, &sock) {
            Ok(code) => Report::Exited { code },
            Err(e) => Report::Failed {
                error: e.to_string(),
            },
        },
        Err(e) => Report::Failed {
            error: format!("reading the step from dray: {e}"),
        },
    };
    let mut line = serde_json::to_vec(&report).unwrap_or_default();
    line.push(b'\n');
    let _ = sock.write_all(&line);
    0
}

fn take_stdin() -> io::Result<OwnedFd> {
    let stdin = io::stdin();
    let fd = stdin.as_fd().try_clone_to_owned()?; // F_DUPFD_CLOEXEC
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(null.as_fd()).map_err(io::Error::from)?;
    Ok(fd)
}

fn read_spec(sock: &mut File) -> io::Result<InitSpec> {
    let mut len = [0u8; 8];
    sock.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 64 << 20 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "spec too large"));
    }
    let mut buf = vec![0; len as usize];
    sock.read_exact(&mut buf)?;
    serde_json::from_slice(&buf).map_err(io::Error::from)
}

/// Runs the step; the exit code of its process.
fn run(spec: &InitSpec, sock: &File) -> Result<i32, SetupError> {
    let tmp = TempDir::new().map_err(SetupError::io("create the sandbox's temp dir"))?;
    let layout = Layout::under(&tmp.0);
    prepare_layout(spec, &layout).map_err(SetupError::io("prepare the sandbox's temp dir"))?;
    let (spec, _locks) = resolve_mounts(spec)?;
    let cgroup = spec.pids_limit.and_then(Cgroup::create);
    let result = fork_and_wait(&spec, &layout, cgroup.as_ref(), sock);
    if let Some(cg) = &cgroup {
        cg.remove();
    }
    let (code, stubs) = result?;
    stubs::clean(&spec.root.upper, &spec.root.lowers, &stubs);
    Ok(code)
}

fn fork_and_wait(
    spec: &InitSpec,
    layout: &Layout,
    cgroup: Option<&Cgroup>,
    sock: &File,
) -> Result<(i32, Stubs), SetupError> {
    // CLONE_NEWPID applies to the children created afterwards, not to this process
    // (pid_namespaces(7)): the next fork's child is pid 1 of the new namespace.
    nix::sched::unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| SetupError::os("create a pid namespace", e))?;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::os("create a pipe", e))?;
    // SAFETY: this process is single-threaded (it is the freshly spawned helper, before any
    // thread is started), so the child may run arbitrary code after fork.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(SetupError::os("fork", e)),
        Ok(ForkResult::Child) => {
            drop(rd);
            let err = container::run(spec, layout, cgroup, &wr);
            let mut line = serde_json::to_vec(&ChildMsg::Error(err)).unwrap_or_default();
            line.push(b'\n');
            let _ = File::from(wr).write_all(&line);
            // _exit, not exit: the helper's atexit handlers and buffers are not the child's.
            // SAFETY: _exit ends the process immediately; nothing runs after it.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(wr);
    let mut out = Vec::new();
    let _ = File::from(rd).read_to_end(&mut out);
    let mut stubs = Stubs::default();
    let mut error = None;
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice(line) {
            Ok(ChildMsg::Stubs(s)) => stubs = s,
            Ok(ChildMsg::Error(e)) => error = Some(e),
            Err(_) => {}
        }
    }
    if error.is_none() {
        watch(child, cgroup, sock);
    }
    let code = wait(child);
    match error {
        Some(message) => {
            stubs::clean(&spec.root.upper, &spec.root.lowers, &stubs);
            Err(SetupError::Child { message })
        }
        None => Ok((code, stubs)),
    }
}

/// Waits until `child` exits, killing it if the parent cancels or goes away.
fn watch(child: Pid, cgroup: Option<&Cgroup>, sock: &File) {
    // A pidfd is pollable for the child's exit (pidfd_open(2)), so one poll watches both.
    let Ok(pidfd) = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(child.as_raw()).unwrap_or(rustix::process::Pid::INIT),
        rustix::process::PidfdFlags::empty(),
    ) else {
        return;
    };
    let mut sock_open = true;
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if sock_open {
            fds.push(PollFd::new(sock.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        if sock_open && fds[1].revents().is_some_and(|r| !r.is_empty()) {
            let mut buf = [0u8; 64];
            let n = (&*sock).read(&mut buf).unwrap_or(0);
            // EOF (dray died or was interrupted) or an explicit kill: end the step's tree.
            if n == 0 || buf[..n].windows(4).any(|w| w == b"kill") {
                sock_open = n != 0;
                if let Some(cg) = cgroup {
                    cg.kill();
                }
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Reaps `child`; its exit code, or 128 + the signal that killed it (like a shell).
fn wait(child: Pid) -> i32 {
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::Error::EINTR) | Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}

fn prepare_layout(spec: &InitSpec, layout: &Layout) -> io::Result<()> {
    for dir in [
        &layout.root,
        &layout.empty,
        &layout.etc,
        &layout.stage,
        &layout.rw,
        &layout.hide,
    ] {
        std::fs::create_dir(dir)?;
    }
    std::fs::create_dir(&layout.secrets)?;
    let write = |name: &str, text: &str| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(layout.etc.join(name))?;
        f.write_all(text.as_bytes())
    };
    write("hosts", &etc::hosts(&spec.hostname))?;
    write("hostname", &etc::hostname(&spec.hostname))?;
    write("resolv.conf", &spec.resolv_conf)?;
    for (i, m) in spec.mounts.iter().enumerate() {
        if let Kind::Bind {
            readonly,
            local_dir,
            hidden,
            ..
        } = &m.kind
        {
            if let Some(context) = local_dir.as_deref().filter(|_| !hidden.is_empty()) {
                let layer = layout.hide.join(i.to_string());
                std::fs::create_dir(&layer)?;
                crate::hide::whiteout_layer(&layer, context, hidden)?;
            } else if *readonly && local_dir.is_some() {
                continue;
            }
            std::fs::create_dir(layout.stage.join(i.to_string()))?;
            if !readonly {
                let rw = layout.rw.join(i.to_string());
                std::fs::create_dir_all(rw.join("upper"))?;
                std::fs::create_dir_all(rw.join("work"))?;
            }
        }
    }
    Ok(())
}

/// Cache sharing and secrets: returns the spec with each cache mount's directory decided and
/// missing optional secrets dropped, plus the locks to hold for the step's lifetime.
fn resolve_mounts(spec: &InitSpec) -> Result<(InitSpec, Vec<File>), SetupError> {
    use dray_llb::Sharing;
    use rustix::fs::{FlockOperation, flock};
    let mut spec = spec.clone();
    let mut locks = Vec::new();
    let mut keep = Vec::new();
    for m in spec.mounts.drain(..) {
        match &m.kind {
            Kind::Cache {
                dir,
                sharing,
                readonly,
            } => {
                let open = |d: &Path| -> Result<File, SetupError> {
                    std::fs::create_dir_all(d).map_err(SetupError::io("create a cache mount"))?;
                    File::open(d).map_err(SetupError::io("open a cache mount"))
                };
                let chosen: PathBuf = match sharing {
                    // Shared users only mark the directory in use (so private users go
                    // elsewhere); they never wait.
                    Sharing::Shared => {
                        let f = open(dir)?;
                        let _ = flock(&f, FlockOperation::NonBlockingLockShared);
                        locks.push(f);
                        dir.clone()
                    }
                    // Locked: one step at a time (flock(2) waits here, in the helper).
                    Sharing::Locked => {
                        let f = open(dir)?;
                        flock(&f, FlockOperation::LockExclusive)
                            .map_err(|e| SetupError::io("lock a cache mount")(e.into()))?;
                        locks.push(f);
                        dir.clone()
                    }
                    // Private: the first of dir, dir.private-1, … nobody else is using.
                    Sharing::Private => {
                        let mut n = 0;
                        loop {
                            let d = if n == 0 {
                                dir.clone()
                            } else {
                                let mut s = dir.clone().into_os_string();
                                s.push(format!(".private-{n}"));
                                PathBuf::from(s)
                            };
                            if n > 0 && d.symlink_metadata().is_err() {
                                new_private_copy(dir, &d)?;
                            }
                            let f = open(&d)?;
                            if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
                                locks.push(f);
                                break d;
                            }
                            n += 1;
                        }
                    }
                };
                keep.push(crate::spec::Mount {
                    dest: m.dest.clone(),
                    kind: Kind::Cache {
                        dir: chosen,
                        sharing: *sharing,
                        readonly: *readonly,
                    },
                });
            }
            Kind::Secret(s) | Kind::Ssh(s) => {
                let present = s.source.as_ref().is_some_and(|p| p.exists());
                if !present && !s.optional {
                    let what = if matches!(m.kind, Kind::Ssh(_)) {
                        "SSH agent"
                    } else {
                        "secret"
                    };
                    return Err(SetupError::MissingSecret {
                        what,
                        id: s.id.clone(),
                    });
                }
                if present {
                    keep.push(m);
                } else {
                    // An optional secret that is missing: nothing is mounted.
                    let mut m = m;
                    if let Kind::Secret(s) | Kind::Ssh(s) = &mut m.kind {
                        s.source = None;
                    }
                    keep.push(m);
                }
            }
            _ => keep.push(m),
        }
    }
    spec.mounts = keep;
    Ok((spec, locks))
}

/// Creates `copy`, another directory of a `sharing=private` cache, with the owner and mode
/// the solver seeded `main` with (`uid=`, `gid=`, `mode=`); its content starts empty.
fn new_private_copy(main: &Path, copy: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(main).map_err(SetupError::io("stat a cache mount"))?;
    std::fs::create_dir_all(copy).map_err(SetupError::io("create a cache mount"))?;
    std::os::unix::fs::chown(copy, Some(meta.uid()), Some(meta.gid()))
        .map_err(SetupError::io("chown a cache mount"))?;
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(SetupError::io("chmod a cache mount"))
}

/// A private temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// Under `/dev/shm` when it is a tmpfs, else the temp dir. The directory only holds mount
    /// points, three small files and the throwaway layers of `rw` binds; on a tmpfs its
    /// creation and removal never wait for a disk journal, which is a good part of a step's
    /// fixed cost on a busy disk (see `bench/run-steps.sh`).
    fn new() -> io::Result<Self> {
        let shm = Path::new("/dev/shm");
        let on_tmpfs = rustix::fs::statfs(shm).is_ok_and(|s| s.f_type == libc::TMPFS_MAGIC);
        let parent = if on_tmpfs {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // mkdtemp makes it 0700: other users of a shared /dev/shm cannot look in.
        let dir =
            nix::unistd::mkdtemp(&parent.join("dray-sandbox-XXXXXX")).map_err(io::Error::from)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
