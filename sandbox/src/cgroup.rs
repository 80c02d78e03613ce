//! A per-step cgroup with a `pids.max` limit, so a fork bomb in a `RUN` cannot exhaust the
//! host's process table; it is also how a cancelled step's whole tree is killed at once.
//!
//! Layout (created on first use, as root):
//!
//! ```text
//! /sys/fs/cgroup/dray/<helper pid>-<n>/     cgroup v2 (unified): pids.max, cgroup.kill
//! /sys/fs/cgroup/pids/dray/<helper pid>-<n>/  cgroup v1 pids hierarchy (hybrid hosts)
//! ```
//!
//! v2 is used when the unified hierarchy has the `pids` controller; otherwise a v1 `pids`
//! hierarchy; otherwise there is no limit (unprivileged, or a cgroup namespace whose root has
//! processes: cgroup v2's "no internal processes" rule forbids enabling controllers there).

use std::io;
use std::path::{Path, PathBuf};

const V2_ROOT: &str = "/sys/fs/cgroup";
const V1_PIDS: &str = "/sys/fs/cgroup/pids";

/// One step's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cgroup {
    path: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// Creates a cgroup limited to `limit` processes, if the host allows.
    pub(crate) fn create(limit: u64) -> Option<Cgroup> {
        let name = format!("{}-{}", std::process::id(), unique());
        if let Some(base) = v2_base() {
            let path = base.join(&name);
            if std::fs::create_dir(&path).is_ok() {
                let cg = Cgroup { path, v2: true };
                if cg.write("pids.max", &limit.to_string()).is_ok() {
                    return Some(cg);
                }
                cg.remove();
            }
        }
        let v1 = Path::new(V1_PIDS);
        if v1.join("cgroup.procs").exists() && !v1.join("cgroup.controllers").exists() {
            let base = v1.join("dray");
            let _ = std::fs::create_dir(&base);
            let path = base.join(&name);
            if std::fs::create_dir(&path).is_ok() {
                let cg = Cgroup { path, v2: false };
                if cg.write("pids.max", &limit.to_string()).is_ok() {
                    return Some(cg);
                }
                cg.remove();
            }
        }
        None
    }

    /// Moves the calling process into the cgroup (children inherit it).
    pub(crate) fn join(&self) -> io::Result<()> {
        // "0" means the writing process itself (cgroup-v2.rst, "cgroup.procs").
        self.write("cgroup.procs", "0")
    }

    /// Kills every process in the cgroup.
    pub(crate) fn kill(&self) {
        // cgroup.kill (Linux 5.14) kills the whole cgroup atomically, racing no fork.
        if self.v2 && self.write("cgroup.kill", "1").is_ok() {
            return;
        }
        if let Ok(procs) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Removes the (empty) cgroup; its last processes may take a moment to be released.
    pub(crate) fn remove(&self) {
        for _ in 0..100 {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.path.join(file), value)
    }
}

/// `/sys/fs/cgroup/dray` with the pids controller enabled for its children, if possible.
fn v2_base() -> Option<PathBuf> {
    let root = Path::new(V2_ROOT);
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "pids") {
        return None;
    }
    let base = root.join("dray");
    let enabled = |dir: &Path| {
        std::fs::read_to_string(dir.join("cgroup.subtree_control"))
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"))
    };
    if !enabled(root) {
        std::fs::write(root.join("cgroup.subtree_control"), "+pids").ok()?;
    }
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    if !enabled(&base) {
        std::fs::write(base.join("cgroup.subtree_control"), "+pids").ok()?;
    }
    Some(base)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos ^ N.fetch_add(1, Ordering::Relaxed)
}
