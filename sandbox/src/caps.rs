//! The capability sets a step runs with.
//!
//! The default is docker's (moby `oci/caps/defaults.go`), which BuildKit uses too: enough for
//! package managers (chown, setuid for `su`, raw sockets for `ping`), not enough to mount,
//! load modules, change the clock or trace other processes. `--security=insecure` gets all.

use caps::Capability;

/// Docker's default capability set.
pub(crate) const DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The set for a step: docker's default, or everything the kernel knows for an insecure one.
pub(crate) fn for_step(insecure: bool) -> caps::CapsHashSet {
    if insecure {
        caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all())
    } else {
        DEFAULT.into_iter().collect()
    }
}
