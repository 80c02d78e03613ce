//! `dray debug parse` and `dray debug stages`.

use crate::harness::{TestDir, repo_path, text};

#[test]
fn parse_prints_buildkits_dump() {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        "FROM busybox AS base\nCOPY --chown=1:1 a b /c/\nENV A=1 B=\"x y\"\nCMD [\"sh\",\"-c\",\"x\"]\nONBUILD RUN make\n",
    );
    let output = dir.dray().args(["debug", "parse"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "(from \"busybox\" \"AS\" \"base\")\n\
         (copy [\"--chown=1:1\"] \"a\" \"b\" \"/c/\")\n\
         (env \"A\" \"1\" \"=\" \"B\" \"\\\"x y\\\"\" \"=\")\n\
         (cmd \"sh\" \"-c\" \"x\")\n\
         (onbuild (run \"make\"))\n"
    );
}

#[test]
fn parse_reads_standard_input_with_dash() {
    let dir = TestDir::new();
    let output = dir
        .dray()
        .args(["debug", "parse", "-f", "-"])
        .write_stdin("from scratch\n")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "(from \"scratch\")\n");
}

#[test]
fn parse_matches_a_buildkit_fixture_through_the_binary() {
    let case = repo_path("../shared/conformance/buildkit-parser/testfiles/brimstone-consuldock");
    assert!(
        case.is_dir(),
        "conformance fixtures missing at {}",
        case.display()
    );
    let dir = TestDir::new();
    let output = dir
        .dray()
        .args(["debug", "parse", "-f"])
        .arg(case.join("Dockerfile"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        std::fs::read_to_string(case.join("result")).unwrap()
    );
}

#[test]
fn unterminated_heredoc_names_file_line_and_column_and_exits_1() {
    let dir = TestDir::new();
    dir.write("Dockerfile", "FROM scratch\nRUN <<EOF\necho hi\n");
    let output = dir.dray().args(["debug", "parse"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (stdout, stderr) = text(&output);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("Dockerfile:2:"), "{stderr}");
    assert!(stderr.contains("heredoc"), "{stderr}");
    assert!(stderr.contains('^'), "no caret in:\n{stderr}");
}

#[test]
fn empty_dockerfile_is_an_error() {
    let dir = TestDir::new();
    dir.write("Dockerfile", "# only a comment\n");
    let output = dir.dray().args(["debug", "parse"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("file with no instructions"), "{stderr}");
}

#[test]
fn missing_dockerfile_names_the_path() {
    let dir = TestDir::new();
    let output = dir
        .dray()
        .args(["debug", "parse", "-f", "nope/Dockerfile"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("nope/Dockerfile"), "{stderr}");
}

#[test]
fn stages_prints_the_reachable_stages_with_expanded_values() {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        "ARG BASE=alpine\nFROM ${BASE} AS orphan\nRUN true\nFROM ${BASE} AS build\nARG V=1\nENV OUT=/out/$V\nWORKDIR $OUT\nFROM scratch\nCOPY --from=build /out /out\n",
    );
    let output = dir
        .dray()
        .args(["debug", "stages", "--build-arg", "V=2"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let graph: serde_json::Value = serde_json::from_str(&stdout).expect("stages prints JSON");
    let text = graph.to_string();
    assert!(
        !text.contains("orphan"),
        "an unreachable stage was kept: {stdout}"
    );
    assert!(
        text.contains("/out/2"),
        "the build arg was not expanded: {stdout}"
    );
}

#[test]
fn stages_unknown_target_lists_the_stages() {
    let dir = TestDir::new();
    dir.write("Dockerfile", "FROM scratch AS one\nFROM scratch AS two\n");
    let output = dir
        .dray()
        .args(["debug", "stages", "--target", "three"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("three"), "{stderr}");
    assert!(stderr.contains("one") && stderr.contains("two"), "{stderr}");
}

#[test]
fn unknown_instruction_is_reported_with_location() {
    let dir = TestDir::new();
    dir.write("Dockerfile", "FROM scratch\nWORKDIR /src\nRUNN make\n");
    let output = dir.dray().args(["debug", "stages"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("Dockerfile:3:1"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("unknown instruction"),
        "{stderr}"
    );
}

#[test]
fn the_readme_example_parses_and_resolves() {
    let dockerfile = repo_path("examples/hello/Dockerfile");
    let dir = TestDir::new();
    for command in ["parse", "stages"] {
        let output = dir
            .dray()
            .args(["debug", command, "-f"])
            .arg(&dockerfile)
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert!(output.status.success(), "debug {command}: {stderr}");
    }
}

/// `dray debug llb` output, pinned. `DRAY_BLESS=1` rewrites the expected file; review the diff.
#[test]
fn llb_json_matches_the_pinned_graph() {
    let case = repo_path("testdata/debug-llb/multistage");
    let dir = TestDir::new();
    // Run from the case directory so the source locations name `Dockerfile`, not a host path.
    let llb = |format: &str| {
        let mut cmd = dir.dray();
        cmd.current_dir(&case)
            .arg("--root")
            .arg(dir.path().join("root"));
        cmd.args([
            "debug",
            "llb",
            "--build-arg",
            "V=2",
            "--format",
            format,
            "-f",
            "Dockerfile",
        ]);
        cmd.output().unwrap()
    };
    let output = llb("json");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let expected = case.join("expected.json");
    if std::env::var_os("DRAY_BLESS").is_some() {
        std::fs::write(&expected, &stdout).unwrap();
    }
    let want = std::fs::read_to_string(&expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with DRAY_BLESS=1 to create it)",
            expected.display()
        )
    });
    assert_eq!(
        stdout, want,
        "the op graph changed; if intended, rerun with DRAY_BLESS=1"
    );
    let graph: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["metadata"]["description"]["llb.customname"].as_str())
        .collect();
    assert!(
        names.contains(&"[build 2/2] COPY --chmod=0755 app.sh ./app-2.sh"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("LINK COPY --from=docs")),
        "--link is a merge: {names:?}"
    );
    assert!(text(&llb("dot")).0.starts_with("digraph llb {"));
}
