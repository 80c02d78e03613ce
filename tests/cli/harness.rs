//! A small harness: a fresh temporary directory per test and the `dray` binary run in it.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// A test's working directory with helpers to write files and run `dray` inside it.
pub(crate) struct TestDir {
    dir: TempDir,
}

impl TestDir {
    pub(crate) fn new() -> Self {
        TestDir {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The store root used by [`TestDir::build`].
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `dray --root ROOT build --progress plain ARGS… ctx`, with a fixed `SOURCE_DATE_EPOCH`.
    pub(crate) fn build(&self, args: &[&str]) -> Output {
        let mut cmd = self.dray();
        cmd.arg("--root")
            .arg(self.root())
            .args(["build", "--progress", "plain"])
            .args(args);
        cmd.arg("ctx").env("SOURCE_DATE_EPOCH", "1700000000");
        cmd.output().expect("run dray build")
    }

    /// Writes `contents` to `name` (relative to the test directory), creating parent dirs.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// A `dray` command whose working directory is the test directory. Colour and the
    /// environment that could change output are cleared.
    pub(crate) fn dray(&self) -> Command {
        let mut cmd = Command::cargo_bin("dray").expect("the dray binary is built");
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("DRAY_ROOT");
        cmd
    }
}

/// The process's stdout and stderr as UTF-8 text.
pub(crate) fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Absolute path of a file in the repository.
pub(crate) fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
