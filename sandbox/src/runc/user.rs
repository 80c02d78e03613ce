//! `user[:group]` → numeric ids, from the rootfs's `/etc/passwd` and `/etc/group`, as Docker
//! and runc's `libcontainer/user.GetExecUser` resolve them.
//!
//! | `USER` | uid | gid | additional gids |
//! |---|---|---|---|
//! | empty | 0 | 0 | groups listing `root` |
//! | `name` | passwd entry's uid (error if none) | its primary gid | groups listing `name` |
//! | `1000` | 1000 | passwd entry's gid, else 0 | groups listing that entry's name |
//! | `u:grp` | as above | `grp` from `/etc/group` (error if none) | none |
//! | `u:50` | as above | 50 | none |

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
}

/// Why a `USER` could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// A user name with no `/etc/passwd` entry.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoSuchUser {
        /// The name.
        name: String,
    },
    /// A group name with no `/etc/group` entry.
    #[error("unable to find group {name}: no matching entries in group file")]
    NoSuchGroup {
        /// The name.
        name: String,
    },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let mut f = line.trim().split(':');
        let name = f.next().filter(|n| !n.is_empty() && !n.starts_with('#'))?;
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some(PasswdEntry { name, uid, gid })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let mut f = line.trim().split(':');
        let name = f.next().filter(|n| !n.is_empty() && !n.starts_with('#'))?;
        let _password = f.next()?;
        let gid = f.next()?.parse().ok()?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some(GroupEntry { name, gid, members })
    })
}

/// Resolves `user` (`ExecMeta::user`) against the rootfs's passwd and group files (`None` when
/// the file does not exist).
pub(crate) fn resolve(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = passwd.unwrap_or("");
    let group_text = group.unwrap_or("");
    let (uid, mut gid, name) = match user_part.parse::<u32>() {
        Ok(uid) => match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name)),
            None => (uid, 0, None),
        },
        Err(_) => match passwd_entries(passwd).find(|e| e.name == user_part) {
            Some(e) => (e.uid, e.gid, Some(e.name)),
            None => {
                return Err(UserError::NoSuchUser {
                    name: user_part.to_owned(),
                });
            }
        },
    };
    let mut additional_gids = Vec::new();
    match group_part.filter(|g| !g.is_empty()) {
        Some(g) => {
            gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => group_entries(group_text)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| UserError::NoSuchGroup { name: g.to_owned() })?,
            };
        }
        None => {
            if let Some(name) = name {
                for e in group_entries(group_text) {
                    if e.members.contains(&name) && !additional_gids.contains(&e.gid) {
                        additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nbuilder:x:1000:1001::/home/builder:/bin/sh\nbroken line\n";
    const GROUP: &str =
        "root:x:0:\nbuilders:x:1001:\nwheel:x:10:builder,other\ndocker:x:999: builder \n";

    fn user(uid: u32, gid: u32, additional_gids: Vec<u32>) -> ExecUser {
        ExecUser {
            uid,
            gid,
            additional_gids,
        }
    }

    #[test]
    fn empty_is_root() {
        assert_eq!(
            resolve("", Some(PASSWD), Some(GROUP)),
            Ok(user(0, 0, vec![]))
        );
        assert_eq!(resolve("", None, None), Ok(user(0, 0, vec![])));
    }

    #[test]
    fn names_come_from_passwd_with_supplementary_groups() {
        assert_eq!(
            resolve("builder", Some(PASSWD), Some(GROUP)),
            Ok(user(1000, 1001, vec![10, 999]))
        );
        assert_eq!(
            resolve("1000", Some(PASSWD), Some(GROUP)),
            Ok(user(1000, 1001, vec![10, 999]))
        );
    }

    #[test]
    fn unknown_numeric_user_gets_gid_zero() {
        assert_eq!(
            resolve("4242", Some(PASSWD), None),
            Ok(user(4242, 0, vec![]))
        );
    }

    #[test]
    fn explicit_group_by_name_or_number() {
        assert_eq!(
            resolve("builder:wheel", Some(PASSWD), Some(GROUP)),
            Ok(user(1000, 10, vec![]))
        );
        assert_eq!(
            resolve("5:77", Some(PASSWD), Some(GROUP)),
            Ok(user(5, 77, vec![]))
        );
    }

    #[test]
    fn missing_names_are_errors() {
        assert_eq!(
            resolve("nobody", Some(PASSWD), Some(GROUP)),
            Err(UserError::NoSuchUser {
                name: "nobody".into()
            })
        );
        assert_eq!(
            resolve("builder:staff", Some(PASSWD), Some(GROUP)),
            Err(UserError::NoSuchGroup {
                name: "staff".into()
            })
        );
        assert!(matches!(
            resolve("builder", None, None),
            Err(UserError::NoSuchUser { .. })
        ));
    }
}
