//! `dray save` and `dray load`: round trips into fresh roots keep the image ID and manifest
//! digest, names are normalized, docker's own archive format loads, and a corrupt archive is
//! refused with the blob named and nothing published.

use std::path::Path;

use crate::harness::{TestDir, text};
use crate::output::{DOCKER_MANIFEST, member_json, members, ok, sample};
use crate::readers::run;
use crate::store::{self, read_json};

fn dray_in(dir: &TestDir, root: &Path, args: &[&str]) -> std::process::Output {
    dir.dray()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// (image ID, manifest digest) of `name` in `root`.
fn ids(root: &Path, name: &str) -> (String, String) {
    let (digest, manifest) = store::manifest(root, name);
    (
        manifest["config"]["digest"].as_str().unwrap().to_owned(),
        digest,
    )
}

#[test]
fn save_then_load_in_a_fresh_root_keeps_the_ids_in_both_formats() {
    let dir = TestDir::new();
    sample(&dir);
    ok(&dir.build(&["-t", "app:1", "-t", "example.com/team/app:2"]));
    let root = dir.root();
    let original = ids(&root, "docker.io/library/app:1");
    for format in ["oci", "docker"] {
        let archive = dir.path().join(format!("{format}.tar"));
        let archive_arg = archive.to_str().unwrap();
        ok(&dray_in(
            &dir,
            &root,
            &[
                "save",
                "app:1",
                "example.com/team/app:2",
                "-o",
                archive_arg,
                "--format",
                format,
            ],
        ));
        let tar = std::fs::read(&archive).unwrap();
        assert_eq!(
            member_json(&tar, "index.json")["manifests"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        if format == "docker" {
            let m = member_json(&tar, "manifest.json");
            assert_eq!(
                m.as_array().unwrap().len(),
                1,
                "one image, two RepoTags: {m}"
            );
            assert_eq!(
                m[0]["RepoTags"],
                serde_json::json!(["app:1", "example.com/team/app:2"])
            );
        }

        let fresh = dir.path().join(format!("fresh-{format}"));
        let stdout = ok(&dray_in(&dir, &fresh, &["load", "-i", archive_arg]));
        assert_eq!(
            stdout,
            "Loaded image: app:1\nLoaded image: example.com/team/app:2\n"
        );
        // The docker format names a manifest rewritten in docker media types: the image ID
        // (config) is kept, the manifest digest is the archive's.
        let expected = if format == "docker" {
            let entry = &member_json(&tar, "index.json")["manifests"][0];
            assert_eq!(entry["mediaType"], DOCKER_MANIFEST);
            (
                original.0.clone(),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        } else {
            original.clone()
        };
        assert_ne!(format == "docker", expected == original);
        assert_eq!(ids(&fresh, "docker.io/library/app:1"), expected);
        assert_eq!(ids(&fresh, "example.com/team/app:2"), expected);
        assert!(store::verify_blobs(&fresh) >= 4);
        let inspect = ok(&dray_in(&dir, &fresh, &["inspect", "app:1"]));
        assert!(inspect.contains(&original.0), "{inspect}");

        // Saving again from the fresh root gives the same bytes.
        let again = dir.path().join(format!("again-{format}.tar"));
        ok(&dray_in(
            &dir,
            &fresh,
            &[
                "save",
                "app:1",
                "example.com/team/app:2",
                "-o",
                again.to_str().unwrap(),
                "--format",
                format,
            ],
        ));
        assert!(
            std::fs::read(&again).unwrap() == tar,
            "{format}: save → load → save changed the archive"
        );
    }
}

#[test]
fn save_to_stdout_and_load_from_stdin() {
    let dir = TestDir::new();
    sample(&dir);
    ok(&dir.build(&["-t", "app"]));
    let saved = dray_in(&dir, &dir.root(), &["save", "app"]);
    ok(&saved);
    assert!(members(&saved.stdout).iter().any(|m| m.0 == "index.json"));
    let fresh = dir.path().join("fresh");
    let loaded = dir
        .dray()
        .arg("--root")
        .arg(&fresh)
        .args(["load"])
        .write_stdin(saved.stdout)
        .output()
        .unwrap();
    assert_eq!(ok(&loaded), "Loaded image: app:latest\n");
    assert_eq!(
        ids(&fresh, "docker.io/library/app:latest"),
        ids(&dir.root(), "docker.io/library/app:latest")
    );
}

#[test]
fn an_image_saved_by_id_loads_without_a_name() {
    let dir = TestDir::new();
    sample(&dir);
    let id = ok(&dir.build(&["-t", "app"])).trim().to_owned();
    let archive = dir.path().join("byid.tar");
    ok(&dray_in(
        &dir,
        &dir.root(),
        &["save", &id[7..19], "-o", archive.to_str().unwrap()],
    ));
    let fresh = dir.path().join("fresh");
    let stdout = ok(&dray_in(
        &dir,
        &fresh,
        &["load", "-i", archive.to_str().unwrap()],
    ));
    assert_eq!(stdout, format!("Loaded image ID: {id}\n"));
    assert_eq!(
        read_json(&fresh.join("index.json"))["manifests"],
        serde_json::json!([])
    );
}

#[test]
fn load_refuses_a_corrupt_blob_names_it_and_publishes_nothing() {
    let dir = TestDir::new();
    sample(&dir);
    ok(&dir.build(&["-t", "app"]));
    let archive = dir.path().join("img.tar");
    ok(&dray_in(
        &dir,
        &dir.root(),
        &["save", "app", "-o", archive.to_str().unwrap()],
    ));
    // Corrupt the last layer's bytes inside the tar.
    let (_, manifest) = store::manifest(&dir.root(), "docker.io/library/app:latest");
    let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bytes = std::fs::read(&archive).unwrap();
    let mut tar = tar::Archive::new(&bytes[..]);
    let offset = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().ends_with(&layer[7..]))
        .map(|e| e.raw_file_position() as usize)
        .unwrap();
    bytes[offset + 10] ^= 0xff;
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();

    let fresh = dir.path().join("fresh");
    let output = dray_in(&dir, &fresh, &["load", "-i", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains(&format!("blobs/sha256/{}", &layer[7..])),
        "{stderr}"
    );
    assert!(stderr.contains(&layer), "{stderr}");
    assert_eq!(
        read_json(&fresh.join("index.json"))["manifests"],
        serde_json::json!([])
    );
    assert_eq!(
        std::fs::read_dir(fresh.join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "no blob published"
    );
    assert_eq!(
        std::fs::read_dir(fresh.join("ingest")).unwrap().count(),
        0,
        "no staged file left"
    );

    let not_tar = dir.path().join("junk.tar");
    std::fs::write(&not_tar, b"{}").unwrap();
    let output = dray_in(&dir, &fresh, &["load", "-i", not_tar.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn load_reads_a_docker_save_archive_written_by_skopeo() {
    let dir = TestDir::new();
    sample(&dir);
    let img = dir.path().join("img.tar");
    ok(&dir.build(&[
        "-t",
        "app",
        "--output",
        &format!("type=oci,dest={}", img.display()),
    ]));
    let legacy = dir.path().join("legacy.tar");
    // skopeo writes docker's pre-25 format: <id>.json config, <id>/layer.tar uncompressed layers.
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", img.display()),
            &format!("docker-archive:{}:team/app:legacy", legacy.display()),
        ],
    );
    let fresh = dir.path().join("fresh");
    let stdout = ok(&dray_in(
        &dir,
        &fresh,
        &["load", "-i", legacy.to_str().unwrap()],
    ));
    assert_eq!(stdout, "Loaded image: team/app:legacy\n");
    let (id, _) = ids(&fresh, "docker.io/team/app:legacy");
    assert_eq!(
        id,
        ids(&dir.root(), "docker.io/library/app:latest").0,
        "same config, same image ID"
    );
    // The layers are the uncompressed tars skopeo wrote; the files are the same.
    let files = store::files(&fresh, "docker.io/team/app:legacy");
    let original = store::files(&dir.root(), "docker.io/library/app:latest");
    assert_eq!(files, original);
}

#[test]
fn save_of_an_unknown_image_fails() {
    let dir = TestDir::new();
    let output = dray_in(&dir, &dir.root(), &["save", "nope", "-o", "x.tar"]);
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(!dir.path().join("x.tar").exists(), "no partial archive");
}
