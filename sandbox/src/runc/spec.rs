//! The OCI runtime `config.json` of one step, built with [`oci_spec::runtime`].
//!
//! | part | sandbox (default) | `--security=insecure` |
//! |---|---|---|
//! | namespaces | mount, pid, uts, ipc; network only for `--network=none` | same |
//! | capabilities | Docker's default 14 | all that runc itself holds (its `CapBnd`) |
//! | `noNewPrivileges` | yes | no |
//! | `/proc`, `/dev` (tmpfs + runc's default nodes), `/dev/pts`, `/dev/shm`, `/dev/mqueue` | yes | yes |
//! | `/sys` | read-only | read-write |
//! | masked and read-only `/proc` paths | runc's defaults | none |
//! | device cgroup | deny all (runc adds its default nodes) | same |
//! | `/etc/resolv.conf`, `/etc/hosts`, `/etc/hostname` | read-only binds of bundle files | same |
//!
//! The network modes `sandbox` and `host` both use the host's network: dray has no network
//! setup of its own (no bridge, no CNI), as BuildKit's `host` entitlement; `none` gets a new
//! network namespace that holds only `lo`.

use std::path::{Path, PathBuf};

use dray_llb::{NetMode, SecurityMode};
use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder, get_default_maskedpaths,
    get_default_readonly_paths,
};

use crate::user::ExecUser;

/// Docker's default capability set (`moby/oci/caps/defaults.go`).
pub(crate) const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability with its kernel number (`linux/capability.h`), for `--security=insecure`.
const ALL_CAPABILITIES: [(Capability, u32); 41] = [
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::DacReadSearch, 2),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::LinuxImmutable, 9),
    (Capability::NetBindService, 10),
    (Capability::NetBroadcast, 11),
    (Capability::NetAdmin, 12),
    (Capability::NetRaw, 13),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::SysModule, 16),
    (Capability::SysRawio, 17),
    (Capability::SysChroot, 18),
    (Capability::SysPtrace, 19),
    (Capability::SysPacct, 20),
    (Capability::SysAdmin, 21),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysResource, 24),
    (Capability::SysTime, 25),
    (Capability::SysTtyConfig, 26),
    (Capability::Mknod, 27),
    (Capability::Lease, 28),
    (Capability::AuditWrite, 29),
    (Capability::AuditControl, 30),
    (Capability::Setfcap, 31),
    (Capability::MacOverride, 32),
    (Capability::MacAdmin, 33),
    (Capability::Syslog, 34),
    (Capability::WakeAlarm, 35),
    (Capability::BlockSuspend, 36),
    (Capability::AuditRead, 37),
    (Capability::Perfmon, 38),
    (Capability::Bpf, 39),
    (Capability::CheckpointRestore, 40),
];

/// The calling process's capability bounding set (`CapBnd` of `/proc/self/status`): a
/// container cannot get a capability its runtime lacks (runc fails with "unable to apply
/// caps"), as when dray itself runs in a container without `CAP_SYS_RESOURCE`.
pub(crate) fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// A mount of the step besides the standard ones, already prepared on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepMount {
    /// A bind of a host path (a directory or a file).
    Bind {
        dest: String,
        source: PathBuf,
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs { dest: String, size: Option<u64> },
}

impl StepMount {
    pub(crate) fn dest(&self) -> &str {
        match self {
            StepMount::Bind { dest, .. } | StepMount::Tmpfs { dest, .. } => dest,
        }
    }
}

/// Everything [`build`] needs; all host paths are already prepared.
#[derive(Debug, Clone)]
pub(crate) struct SpecInput<'a> {
    pub(crate) args: &'a [String],
    /// The process environment, in order (`env` then the proxy variables).
    pub(crate) env: Vec<String>,
    pub(crate) cwd: &'a str,
    pub(crate) user: &'a ExecUser,
    pub(crate) hostname: &'a str,
    pub(crate) network: NetMode,
    pub(crate) security: SecurityMode,
    /// The runtime's own bounding set ([`host_bounding_set`]): no capability outside it.
    pub(crate) host_capabilities: u64,
    /// The bundle's `rootfs` directory (the mounted overlay).
    pub(crate) rootfs: &'a Path,
    /// Host files bound read-only over `/etc/resolv.conf`, `/etc/hosts`, `/etc/hostname`.
    pub(crate) etc_files: [(&'static str, PathBuf); 3],
    pub(crate) mounts: &'a [StepMount],
}

fn mount(dest: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
}

/// The standard mounts, in the order runc must make them (`/dev` before `/dev/pts`).
fn standard_mounts(security: SecurityMode) -> Result<Vec<Mount>, OciSpecError> {
    let sys = if security == SecurityMode::Insecure {
        "rw"
    } else {
        "ro"
    };
    Ok(vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", sys],
        )?,
    ])
}

/// The container paths of the standard mounts, which must exist in the rootfs (directories).
pub(crate) const STANDARD_MOUNT_POINTS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// The `config.json` of a step.
pub(crate) fn build(input: &SpecInput<'_>) -> Result<Spec, OciSpecError> {
    let insecure = input.security == SecurityMode::Insecure;
    let allowed = |cap: &Capability| {
        ALL_CAPABILITIES
            .iter()
            .find(|(c, _)| c == cap)
            .is_some_and(|(_, bit)| input.host_capabilities & (1 << bit) != 0)
    };
    let caps: oci_spec::runtime::Capabilities = if insecure {
        ALL_CAPABILITIES
            .iter()
            .map(|(c, _)| *c)
            .filter(allowed)
            .collect()
    } else {
        DEFAULT_CAPABILITIES.into_iter().filter(allowed).collect()
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.groups.clone())
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(input.args.to_vec())
        .env(input.env.clone())
        .cwd(input.cwd)
        .capabilities(capabilities)
        .no_new_privileges(!insecure)
        .build()?;

    let mut mounts = standard_mounts(input.security)?;
    for (dest, source) in &input.etc_files {
        mounts.push(mount(dest, "bind", source, &["rbind", "ro"])?);
    }
    for m in input.mounts {
        mounts.push(match m {
            StepMount::Bind {
                dest,
                source,
                readonly,
            } => mount(
                dest,
                "bind",
                source,
                &["rbind", if *readonly { "ro" } else { "rw" }],
            )?,
            StepMount::Tmpfs { dest, size } => {
                let size = size.map(|s| format!("size={s}"));
                let mut options = vec!["nosuid", "nodev", "strictatime", "mode=1777"];
                if let Some(size) = &size {
                    options.push(size);
                }
                mount(dest, "tmpfs", Path::new("tmpfs"), &options)?
            }
        });
    }

    let mut kinds = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if input.network == NetMode::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    let namespaces = kinds
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()?;
    let deny_all_devices = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all_devices])
        .build()?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources);
    if !insecure {
        linux = linux
            .masked_paths(get_default_maskedpaths())
            .readonly_paths(get_default_readonly_paths());
    } else {
        linux = linux.masked_paths(Vec::new()).readonly_paths(Vec::new());
    }
    let linux = linux.build()?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(false)
                .build()?,
        )
        .hostname(input.hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(user: &'a ExecUser, mounts: &'a [StepMount], args: &'a [String]) -> SpecInput<'a> {
        SpecInput {
            args,
            env: vec!["PATH=/bin".into(), "http_proxy=http://proxy".into()],
            cwd: "/work",
            user,
            hostname: "box",
            network: NetMode::None,
            security: SecurityMode::Sandbox,
            host_capabilities: u64::MAX,
            rootfs: Path::new("/b/rootfs"),
            etc_files: [
                ("/etc/resolv.conf", "/b/etc/resolv.conf".into()),
                ("/etc/hosts", "/b/etc/hosts".into()),
                ("/etc/hostname", "/b/etc/hostname".into()),
            ],
            mounts,
        }
    }

    #[test]
    fn sandbox_spec_has_the_documented_parts() {
        let user = ExecUser {
            uid: 1000,
            gid: 1001,
            groups: vec![10],
            home: "/home/builder".into(),
        };
        let mounts = [
            StepMount::Bind {
                dest: "/cache".into(),
                source: "/host/cache".into(),
                readonly: false,
            },
            StepMount::Tmpfs {
                dest: "/tmp".into(),
                size: Some(4096),
            },
        ];
        let args = ["sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        let spec = build(&input(&user, &mounts, &args)).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["user"]["gid"], 1001);
        assert_eq!(json["process"]["user"]["additionalGids"][0], 10);
        assert_eq!(json["process"]["cwd"], "/work");
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["hostname"], "box");
        let caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"CAP_CHOWN".into()));
        assert!(!caps.contains(&"CAP_SYS_ADMIN".into()));
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "pid", "uts", "ipc", "network"]);
        let dests: Vec<&str> = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/etc/resolv.conf",
                "/etc/hosts",
                "/etc/hostname",
                "/cache",
                "/tmp"
            ]
        );
        let tmp = &json["mounts"][10];
        assert!(
            tmp["options"]
                .as_array()
                .unwrap()
                .contains(&"size=4096".into())
        );
        assert!(
            json["mounts"][5]["options"]
                .as_array()
                .unwrap()
                .contains(&"ro".into())
        );
    }

    #[test]
    fn insecure_has_every_capability_and_host_network() {
        let user = ExecUser {
            uid: 0,
            gid: 0,
            groups: vec![],
            home: "/root".into(),
        };
        let args = ["true".to_owned()];
        let mut i = input(&user, &[], &args);
        i.security = SecurityMode::Insecure;
        i.network = NetMode::Sandbox;
        let json = serde_json::to_value(build(&i).unwrap()).unwrap();
        let caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len());
        assert_eq!(json["process"]["noNewPrivileges"], false);
        let ns = json["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().all(|n| n["type"] != "network"));
    }
}
