//! Download progress: `dray pull` and the pulls of `dray build` report each layer's bytes through
//! the solver's `Reporter` (`EventKind::Progress`), rendered as JSON lines by `--progress rawjson`
//! and as `#N sha256:… 1.0MiB / 6.0MiB` lines by `--progress plain`.

use std::process::Output;

use crate::harness::{TestDir, text};
use crate::registry::noise;
use crate::registry_harness::{SlowProxy, TestRegistry, umoci_image};

/// A one-layer image with a ~6 MiB incompressible file, pushed as `big:1`; returns the layer's
/// digest and size.
fn big_image(t: &TestDir, reg: &TestRegistry) -> (String, u64) {
    let layout = t.path().join("big");
    let data = noise(6 << 20);
    umoci_image(&layout, "v1", "amd64", &[&[("big.bin", data.as_str())]]);
    reg.skopeo_push(&format!("oci:{}:v1", layout.display()), "big:1", false);
    let raw = reg.skopeo_inspect("big:1", true);
    (
        raw["layers"][0]["digest"].as_str().unwrap().to_owned(),
        raw["layers"][0]["size"].as_u64().unwrap(),
    )
}

/// The `(current, total)` of every rawjson progress event about `blob` on stderr, in order.
fn progress_of(out: &Output, blob: &str) -> Vec<(u64, u64)> {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "dray failed:\n{stdout}\n{stderr}");
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "progress" && v["id"] == blob)
        .map(|v| (v["current"].as_u64().unwrap(), v["total"].as_u64().unwrap()))
        .collect()
}

/// Several events, byte counts never going back, every one out of the layer's size, the last
/// one complete.
fn assert_grows_to(events: &[(u64, u64)], size: u64) {
    assert!(events.len() >= 3, "a few progress events: {events:?}");
    assert!(events.iter().all(|&(_, total)| total == size), "{events:?}");
    assert!(
        events.windows(2).all(|w| w[0].0 <= w[1].0),
        "growing: {events:?}"
    );
    assert!(
        events.iter().any(|&(c, _)| c > 0 && c < size),
        "some in between: {events:?}"
    );
    assert_eq!(events.last().unwrap().0, size, "{events:?}");
}

#[test]
fn pull_and_build_report_growing_per_layer_progress() {
    let t = TestDir::new();
    let reg = TestRegistry::start();
    let (layer, size) = big_image(&t, &reg);
    // ~8 MiB/s: the layer takes most of a second, several progress intervals.
    let proxy = SlowProxy::start(reg.host(), 8 << 20);
    let name = format!("{}/big:1", proxy.host());

    let pull = t
        .dray()
        .arg("--root")
        .arg(t.root())
        .args(["pull", "--progress", "rawjson", &name])
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .output()
        .unwrap();
    assert_grows_to(&progress_of(&pull, &layer), size);

    // The same through a build's FROM (a fresh root, so the layer is downloaded again), in the
    // FROM step's events.
    let t2 = TestDir::new();
    t2.write("ctx/Dockerfile", format!("FROM {name}\n"));
    let build = t2
        .dray()
        .arg("--root")
        .arg(t2.root())
        .args(["build", "--progress", "rawjson", "ctx"])
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .output()
        .unwrap();
    assert_grows_to(&progress_of(&build, &layer), size);
    let stderr = text(&build).1;
    let from_step = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "progress")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(from_step.contains("FROM"), "{from_step}");

    // Plain: a line per second at most, and the last one says done.
    let t3 = TestDir::new();
    let plain = t3
        .dray()
        .arg("--root")
        .arg(t3.root())
        .args(["pull", "--progress", "plain", &name])
        .env("DOCKER_CONFIG", t.path().join("docker-config"))
        .output()
        .unwrap();
    let stderr = text(&plain).1;
    let short = &layer[..19];
    let total = format!("{:.1}MiB", size as f64 / (1024.0 * 1024.0));
    assert!(
        stderr.contains(&format!("{short} 0.0MiB / {total}")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&format!("{short} {total} / {total}")) && l.ends_with(" done")),
        "{stderr}"
    );
}
