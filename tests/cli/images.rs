//! `dray images`, `inspect`, `history`, `tag` and `rmi` on a store built by `dray build`.

use crate::harness::{TestDir, text};

fn built(dir: &TestDir) {
    dir.write("ctx/a.txt", "a");
    dir.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY a.txt /a.txt\nENV X=1\nCMD [\"/a\"]\n",
    );
    let output = dir.build(&["-t", "app:1.0"]);
    assert!(output.status.success(), "{}", text(&output).1);
}

fn dray(dir: &TestDir, args: &[&str]) -> (String, String, Option<i32>) {
    let output = dir
        .dray()
        .arg("--root")
        .arg(dir.root())
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    (stdout, stderr, output.status.code())
}

#[test]
fn images_lists_the_tag_with_a_short_id() {
    let dir = TestDir::new();
    built(&dir);
    let (stdout, stderr, code) = dray(&dir, &["images"]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let row = lines.next().expect("one image");
    assert!(row.starts_with("app "), "{row}");
    assert!(row.contains(" 1.0 "), "{row}");
}

#[test]
fn inspect_shows_docker_shaped_json() {
    let dir = TestDir::new();
    built(&dir);
    let (stdout, stderr, code) = dray(&dir, &["inspect", "app:1.0"]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let image = &json[0];
    assert!(image["Id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(image["RepoTags"], serde_json::json!(["app:1.0"]));
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["/a"]));
    assert!(
        image["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "X=1")
    );
}

#[test]
fn history_lists_steps_newest_first() {
    let dir = TestDir::new();
    built(&dir);
    let (stdout, stderr, code) = dray(&dir, &["history", "app:1.0"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{stdout}");
    assert!(lines[1].contains("CMD [\"/a\"]"), "{stdout}");
    assert!(
        lines[3].contains("COPY a.txt /a.txt # buildkit"),
        "{stdout}"
    );
    assert!(lines[3].starts_with("<missing>"), "{stdout}");
}

#[test]
fn tag_and_rmi_manage_names() {
    let dir = TestDir::new();
    built(&dir);
    let (_, stderr, code) = dray(
        &dir,
        &["tag", "app:1.0", "registry.example:5000/team/app:prod"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (stdout, _, _) = dray(&dir, &["images"]);
    assert!(
        stdout.contains("registry.example:5000/team/app"),
        "{stdout}"
    );
    let (stdout, stderr, code) = dray(&dir, &["rmi", "app:1.0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "Untagged: app:1.0");
    let (stdout, _, _) = dray(&dir, &["images"]);
    assert!(
        !stdout.lines().any(|line| line.starts_with("app ")),
        "{stdout}"
    );
    let (_, stderr, code) = dray(&dir, &["inspect", "app:1.0"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("app:1.0"), "{stderr}");
}

#[test]
fn a_built_image_can_be_the_base_of_another_build() {
    let dir = TestDir::new();
    built(&dir);
    dir.write("ctx/b.txt", "b");
    dir.write("ctx/Dockerfile.child", "FROM app:1.0\nCOPY b.txt /b.txt\n");
    let output = dir.build(&["-f", "ctx/Dockerfile.child", "-t", "child"]);
    assert!(output.status.success(), "{}", text(&output).1);
    let files = crate::store::files(&dir.root(), "docker.io/library/child:latest");
    assert!(
        files.contains_key("a.txt") && files.contains_key("b.txt"),
        "{files:?}"
    );
    let config = crate::store::config(&dir.root(), "docker.io/library/child:latest");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["/a"]),
        "inherits the base config"
    );
}
