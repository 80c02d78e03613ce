//! Undoing mount points in the upper directory once the step is over, so they never reach the
//! layer (BuildKit's `executor/stubs.go`).
//!
//! A mount point that did not exist (`/proc` in a scratch image, `/etc/resolv.conf`, a
//! `--mount` target) was created inside the overlay, so it is in the upper directory. If it
//! is still empty it is removed; the directory it was created in gets its times back; and a
//! directory that overlay only copied up to hold the stub (now empty, not opaque, with the
//! same owner, mode and times as in the lower layers) is removed too, so the layer does not
//! gain a spurious `etc/` entry.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::plan::Stubs;
use crate::syscall::Times;

/// Removes `stubs` from `upper` (the overlay has been unmounted). `lowers` are top first.
pub(crate) fn clean(upper: &Path, lowers: &[PathBuf], stubs: &Stubs) {
    let host = |p: &Path| upper.join(p.strip_prefix("/").unwrap_or(p));
    for created in stubs.created.iter().rev() {
        let path = host(created);
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => {
                let _ = fs::remove_dir(&path);
            }
            Ok(md) if md.is_file() && md.len() == 0 => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
    // Deepest first, so a parent's recorded times are restored after its children are gone.
    let mut touched: Vec<_> = stubs.touched.iter().collect();
    touched.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.components().count()));
    for (dir, times) in touched {
        let path = host(dir);
        if !path.is_dir() {
            continue;
        }
        set_times(&path, times);
        let mut d = dir.as_path();
        while d != Path::new("/") {
            let Some(parent) = d.parent() else { break };
            if !copied_up_only(&host(d), d, lowers) {
                break;
            }
            // Removing an entry changes its directory's times; keep the parent's as they were,
            // so it can be recognised as unchanged in turn.
            let parent_times = times_of(&host(parent));
            if fs::remove_dir(host(d)).is_err() {
                break;
            }
            if let Some(t) = parent_times {
                set_times(&host(parent), &t);
            }
            d = parent;
        }
    }
}

fn times_of(path: &Path) -> Option<Times> {
    let md = fs::symlink_metadata(path).ok()?;
    Some([(md.atime(), md.atime_nsec()), (md.mtime(), md.mtime_nsec())])
}

fn set_times(path: &Path, [atime, mtime]: &Times) {
    let ts = |(s, ns): (i64, i64)| rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: ns,
    };
    let _ = rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: ts(*atime),
            last_modification: ts(*mtime),
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
}

/// Whether `path` (in the upper dir) is an empty, non-opaque directory identical in owner,
/// mode and mtime to the topmost lower directory at `rel`: removing it changes nothing visible.
fn copied_up_only(path: &Path, rel: &Path, lowers: &[PathBuf]) -> bool {
    let Ok(md) = fs::symlink_metadata(path) else {
        return false;
    };
    if !md.is_dir() || fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
        return false;
    }
    if let Ok(Some(v)) = xattr::get(path, "trusted.overlay.opaque")
        && v == b"y"
    {
        return false;
    }
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let Some(lower) = lowers
        .iter()
        .map(|l| l.join(rel))
        .find_map(|p| fs::symlink_metadata(&p).ok())
    else {
        return false;
    };
    lower.is_dir()
        && lower.mode() == md.mode()
        && lower.uid() == md.uid()
        && lower.gid() == md.gid()
        && lower.mtime() == md.mtime()
        && lower.mtime_nsec() == md.mtime_nsec()
}
