//! Command-line usage: exit codes and help.

use crate::harness::{TestDir, text};

#[test]
fn unknown_subcommand_is_a_usage_error_with_exit_code_2() {
    let dir = TestDir::new();
    let output = dir.dray().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("frobnicate"), "{stderr}");
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_code_2() {
    let dir = TestDir::new();
    let output = dir
        .dray()
        .args(["debug", "parse", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_lists_the_debug_command() {
    let dir = TestDir::new();
    let output = dir.dray().arg("--help").output().unwrap();
    assert!(output.status.success());
    let (stdout, _) = text(&output);
    assert!(stdout.contains("debug"), "{stdout}");
}
