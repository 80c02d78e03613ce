//! Deferred copies end to end: a `COPY` of a tree writes its layer straight from the context
//! and leaves the snapshot's directories empty and marked, and everything that later needs
//! the files (a `RUN` on top, `COPY --from`, a `type=local` export, an export in another
//! compression) gets them, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::{TestDir, text};
use crate::run::{BASE, build_base};
use crate::store;

/// 3 directories of 5 files, one nested, plus a top-level file.
fn tree(dir: &TestDir) {
    for d in 0..3 {
        for f in 0..5 {
            dir.write(&format!("ctx/src/d{d}/f{f}.txt"), format!("file {d}/{f}\n"));
        }
    }
    dir.write("ctx/src/d1/deeper/x.txt", "deep\n");
    dir.write("ctx/README.md", "notes\n");
}

/// The snapshot directories of `root` that hold a deferred (marked, empty) directory.
fn deferred_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root.join("snapshots")) {
        let entry = entry.unwrap();
        if entry.file_type().is_dir()
            && xattr::get(entry.path(), "trusted.dray.deferred")
                .unwrap()
                .is_some()
        {
            out.push(entry.path().to_owned());
        }
    }
    out
}

fn verify(dir: &TestDir) {
    let out = dir
        .dray()
        .arg("--root")
        .arg(dir.root())
        .args(["cache", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
}

fn files_under(
    files: &BTreeMap<String, store::FileEntry>,
    prefix: &str,
) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(path, e)| path.starts_with(prefix) && !e.data.is_empty())
        .map(|(path, e)| (path.clone(), e.data.clone()))
        .collect()
}

#[test]
fn a_copied_tree_is_deferred_and_filled_in_when_a_run_step_reads_it() {
    let dir = TestDir::new();
    tree(&dir);
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY README.md /app/README.md\nCOPY src/ /app/src/\nWORKDIR /app\n",
    );
    let out = dir.build(&["-t", "tree"]);
    assert!(out.status.success(), "{}", text(&out).1);
    // The copy deferred its directories: they are marked and empty in the snapshot...
    let marked = deferred_dirs(&dir.root());
    assert_eq!(marked.len(), 3, "{marked:?}");
    for m in &marked {
        assert_eq!(std::fs::read_dir(m).unwrap().count(), 0, "{}", m.display());
    }
    // ...and the image has every file, from the layer written straight from the context.
    let files = store::files(&dir.root(), "docker.io/library/tree:latest");
    assert_eq!(files_under(&files, "app/src/").len(), 16);
    assert_eq!(files["app/src/d1/deeper/x.txt"].data, b"deep\n");
    assert_eq!(files["app/README.md"].data, b"notes\n");
    verify(&dir);

    // The same tree built without deferring (another root, `--no-cache` is not enough: the
    // setting is the copy's, not the key's) gives the same image: compare with a RUN on top,
    // which needs the files on disk and so fills the snapshot in.
    build_base(&dir.root());
    dir.write(
        "ctx/Dockerfile",
        format!(
            "FROM {BASE}\nCOPY src/ /app/src/\nRUN cat /app/src/d1/deeper/x.txt /app/src/d2/f4.txt > /out.txt && find /app/src -type f | sort > /list.txt\n"
        ),
    );
    let out = dir.build(&["-t", "ran"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let files = store::files(&dir.root(), "docker.io/library/ran:latest");
    assert_eq!(files["out.txt"].data, b"deep\nfile 2/4\n");
    assert_eq!(
        String::from_utf8_lossy(&files["list.txt"].data)
            .lines()
            .count(),
        16
    );
    // The RUN's lower layer was materialized: no marked directory is left under it.
    let copy_layer_marked = deferred_dirs(&dir.root())
        .into_iter()
        .filter(|p| !marked.contains(p))
        .count();
    assert_eq!(copy_layer_marked, 0, "the RUN's base was filled in");
    verify(&dir);
}

#[test]
fn copy_from_a_stage_with_a_deferred_copy_and_local_export_see_every_file() {
    let dir = TestDir::new();
    tree(&dir);
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch AS files\nCOPY src/ /src/\nFROM scratch\nCOPY --from=files /src/d0 /d0/\nCOPY --from=files /src/d1/deeper /deeper/\n",
    );
    let out = dir.build(&[
        "-t",
        "from",
        "--output",
        "type=local,dest=local-out",
        "--output",
        "type=oci,dest=zstd.tar,compression=zstd",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let files = store::files(&dir.root(), "docker.io/library/from:latest");
    assert_eq!(files["d0/f3.txt"].data, b"file 0/3\n");
    assert_eq!(files["deeper/x.txt"].data, b"deep\n");
    let local = dir.path().join("local-out");
    assert_eq!(
        std::fs::read(local.join("d0/f4.txt")).unwrap(),
        b"file 0/4\n"
    );
    assert_eq!(
        std::fs::read(local.join("deeper/x.txt")).unwrap(),
        b"deep\n"
    );
    assert!(dir.path().join("zstd.tar").metadata().unwrap().len() > 0);
    verify(&dir);
}

#[test]
fn two_sources_merging_into_one_directory_fall_back_to_a_full_copy() {
    let dir = TestDir::new();
    dir.write("ctx/a/x/one.txt", "one\n");
    dir.write("ctx/b/x/two.txt", "two\n");
    dir.write("ctx/Dockerfile", "FROM scratch\nCOPY a/ b/ /dest/\n");
    let out = dir.build(&["-t", "merged"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let files = store::files(&dir.root(), "docker.io/library/merged:latest");
    assert_eq!(files["dest/x/one.txt"].data, b"one\n");
    assert_eq!(files["dest/x/two.txt"].data, b"two\n");
    assert!(
        deferred_dirs(&dir.root()).is_empty(),
        "the merge redid the copy in full"
    );
    verify(&dir);
}
