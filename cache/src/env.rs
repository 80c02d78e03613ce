//! Every environment variable `dray-cache` reads, in one place (as `uv-static::EnvVars`).
//!
//! Reading goes through [`var_os`] so a grep for this module finds every use.

use std::ffi::OsString;

/// `DRAY_ROOT`: the state directory, when `--root` is not given.
pub const DRAY_ROOT: &str = "DRAY_ROOT";

/// `XDG_DATA_HOME`: the rootless default is `$XDG_DATA_HOME/dray`. The image store is data, not
/// cache, so it does not go under `XDG_CACHE_HOME`.
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";

/// `HOME`: the rootless fallback is `$HOME/.local/share/dray` when `XDG_DATA_HOME` is unset.
pub const HOME: &str = "HOME";

/// `DRAY_GC`: `0`/`false`/`off` turns off the automatic GC after each build.
pub const DRAY_GC: &str = "DRAY_GC";

/// `DRAY_GC_KEEP_STORAGE`: the automatic GC's size limit (`10%`, `20GB`).
pub const DRAY_GC_KEEP_STORAGE: &str = "DRAY_GC_KEEP_STORAGE";

/// `DRAY_GC_KEEP_DURATION`: the automatic GC prunes records unused this long (`60d`, `48h`).
pub const DRAY_GC_KEEP_DURATION: &str = "DRAY_GC_KEEP_DURATION";

/// Reads one of the variables above from the process environment. Empty values count as unset,
/// as the XDG base-directory spec asks.
pub fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}
