//! Overlay mount options, shared by every backend that mounts the snapshot chain.
//!
//! The upper directory must end up a **complete diff** of the step, because the layer writer
//! walks it alone (it never compares against the lower layers). Three overlay features would
//! break that, so they are turned off explicitly rather than left to the kernel's build-time
//! defaults (`Documentation/filesystems/overlayfs.rst`):
//! - `redirect_dir=off`: a renamed directory would be stored as a redirect xattr pointing into a
//!   lower layer instead of being copied up;
//! - `metacopy=off`: a chmod/chown would copy up only metadata, leaving the data in the lower;
//! - `index=off`: hard-link copy-up bookkeeping we do not need (and it ties the upper to the
//!   lowers' file handles).

use std::path::{Path, PathBuf};

/// The options that keep an upper directory a self-contained diff.
pub(crate) const DIFF_SAFE_OPTIONS: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("metacopy", "off"),
    ("index", "off"),
];

/// One page: the limit of the classic `mount(2)` data argument (`copy_mount_options`).
pub(crate) const MOUNT_DATA_MAX: usize = 4096;

/// The classic `mount(2)` option string: `lowerdir=a:b,upperdir=u,workdir=w,redirect_dir=off,…`.
/// `lowers` are top first; a read-only overlay has no upper and work directory.
pub(crate) fn mount_data(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>) -> String {
    let lowerdir: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    let mut data = format!("lowerdir={}", lowerdir.join(":"));
    if let Some((upper, work)) = upper_work {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            escape(upper),
            escape(work)
        ));
    }
    for (key, value) in DIFF_SAFE_OPTIONS {
        data.push_str(&format!(",{key}={value}"));
    }
    data
}

/// Overlay splits `lowerdir` on `:` and options on `,`; both are escaped with a backslash.
fn escape(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_the_upper_a_complete_diff() {
        let data = mount_data(
            &["/s/2/fs".into(), "/s/1/fs".into()],
            Some((Path::new("/s/3/fs"), Path::new("/s/3/work"))),
        );
        assert_eq!(
            data,
            "lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/3/fs,workdir=/s/3/work,\
             redirect_dir=off,metacopy=off,index=off"
        );
    }

    #[test]
    fn separators_in_paths_are_escaped() {
        let data = mount_data(&["/a:b,c".into()], None);
        assert!(data.starts_with(r"lowerdir=/a\:b\,c,"), "{data}");
    }
}
