//! `user[:group]` → uid, gid, supplementary groups and home, resolved through the rootfs's
//! own `/etc/passwd` and `/etc/group` (never the host's), with runc's rules
//! (`libcontainer/user.GetExecUser`): numeric ids need no entry, names must have one, and a
//! user's supplementary groups are the groups listing it as a member unless a group is given.
//! Both backends (native and runc) resolve users here, so they run steps as the same ids.

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Home directory (for `HOME` when the environment has none).
    pub home: String,
}

/// Why a user could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A user name with no `/etc/passwd` entry.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name with no `/etc/group` entry.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// Resolves `spec` (`user`, `uid`, `user:group`, `uid:gid`, or empty for root) against the
/// text of `/etc/passwd` and `/etc/group` (`None` when the file is missing).
pub(crate) fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let numeric = user.parse::<u32>().ok();
    let found = entries
        .iter()
        .find(|f| f[0] == user || numeric.is_some_and(|n| f[2].parse() == Ok(n)));
    let (uid, mut gid, name, home) = match (found, numeric) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[0]),
            f.get(5).copied().unwrap_or("/").to_owned(),
        ),
        (None, Some(n)) => (n, 0, None, "/".to_owned()),
        (None, None) => return Err(UserError::NoUser(user.to_owned())),
    };
    let groups: Vec<Vec<&str>> = group
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let mut supplementary = Vec::new();
    match grp {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|f| f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| UserError::NoGroup(g.to_owned()))?,
            };
        }
        _ => {
            if let Some(name) = name {
                for f in &groups {
                    let members = f.get(3).copied().unwrap_or_default();
                    if members.split(',').any(|m| m == name)
                        && let Ok(id) = f[2].parse::<u32>()
                        && id != gid
                        && !supplementary.contains(&id)
                    {
                        supplementary.push(id);
                    }
                }
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nstaff:x:50:\n";

    #[test]
    fn empty_is_root() {
        let u = resolve("", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn names_resolve_with_supplementary_groups() {
        let u = resolve("app", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 1000,
                groups: vec![10],
                home: "/home/app".into()
            }
        );
    }

    #[test]
    fn explicit_group_replaces_supplementary_ones() {
        let u = resolve("app:staff", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.groups.len()), (1000, 50, 0));
        let u = resolve("1000:7", Some(PASSWD), None).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        let u = resolve("4242", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("nobody", Some(PASSWD), None),
            Err(UserError::NoUser("nobody".into()))
        );
        assert_eq!(
            resolve("app:nogroup", Some(PASSWD), Some(GROUP)),
            Err(UserError::NoGroup("nogroup".into()))
        );
    }
}
