//! Integration tests of `Solver::solve` against a real store and real file operations.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::{Fixture, context, copy, def, read_in, run};
use dray_llb::{FileAction, FileChain, Mkdir, OpMetadata, State};
use dray_solver::{
    EventKind, OpError, Preimage, RecordingReporter, SolveError, SolveOptions, VertexStatus,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// scratch → COPY a.txt → COPY b.txt → RUN (writes /out).
fn two_copies_and_run() -> State {
    let a = copy(&State::scratch(), "/a.txt", "/app/", "COPY a.txt");
    let b = copy(&a, "/b.txt", "/app/", "COPY b.txt");
    run(&b, 0, "/out", "built", "RUN build")
}

#[test]
fn first_build_runs_everything_and_rebuild_is_one_cache_hit() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    let d = def(&two_copies_and_run());
    let rep = RecordingReporter::new();
    let out = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(rep.started(), ["COPY a.txt", "COPY b.txt", "RUN build"]);
    assert!(rep.cached().is_empty());
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(layers.len(), 3);
    assert_eq!(read_in(&layers, "/app/a.txt").as_deref(), Some("A"));
    assert_eq!(read_in(&layers, "/app/b.txt").as_deref(), Some("B"));
    assert_eq!(read_in(&layers, "/out").as_deref(), Some("built"));
    assert_eq!(fx.exec.runs(), ["RUN build"]);
    let summary = rep.summary().unwrap();
    assert_eq!(
        (summary.executed, summary.cached, summary.failed),
        (3, 0, 0)
    );

    // Rebuild: every key hits. Each step is reported cached, in dependency order, and nothing
    // runs or is loaded: the head's hit is the result.
    fx.exec.clear();
    let rep = RecordingReporter::new();
    let again = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(fx.exec.runs().is_empty());
    assert!(rep.started().is_empty(), "{:?}", rep.events());
    assert_eq!(rep.cached(), ["COPY a.txt", "COPY b.txt", "RUN build"]);
    assert_eq!(again.head.chain_ids(), out.head.chain_ids());
    assert_eq!(again.head_key, out.head_key);
    let run = out
        .vertices
        .values()
        .find(|o| o.name == "RUN build")
        .unwrap();
    assert_eq!(run.chains, [out.head.chain_ids().to_vec()]);
}

#[test]
fn a_fully_cached_rebuild_writes_no_lease_and_bumps_its_hits_once() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    let d = def(&two_copies_and_run());
    let out = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    // The head holds the build's lease: it was written, because the build made snapshots.
    assert_eq!(fx.store.leases().unwrap().len(), 1);
    drop(out);
    assert!(fx.store.leases().unwrap().is_empty());
    let before = fx.store.cache_records().unwrap();
    assert_eq!(before.len(), 3);

    std::thread::sleep(Duration::from_millis(20));
    let again = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    // Only hits: the lease stayed in memory (nothing can remove a snapshot while this build
    // holds the shared store lock), and each hit's last_used moved forward.
    assert!(fx.store.leases().unwrap().is_empty());
    let after = fx.store.cache_records().unwrap();
    let head = after.iter().find(|r| r.key == again.head_key).unwrap();
    let head_before = before.iter().find(|r| r.key == again.head_key).unwrap();
    assert!(head.last_used > head_before.last_used, "{head:?}");
}

#[test]
fn editing_one_context_file_reruns_only_its_copy_and_dependents() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    let d = def(&two_copies_and_run());
    let first = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();

    fx.write("b.txt", "B2");
    let rep = RecordingReporter::new();
    let out = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(rep.cached(), ["COPY a.txt"]);
    assert_eq!(rep.started(), ["COPY b.txt", "RUN build"]);
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/app/b.txt").as_deref(), Some("B2"));
    // The unchanged bottom layer is shared.
    assert_eq!(out.head.chain_ids()[0], first.head.chain_ids()[0]);
    // --explain-cache: the stored preimages say why COPY b.txt missed.
    let preimage = |o: &dray_solver::SolveOutput| -> Preimage {
        let v = o
            .vertices
            .values()
            .find(|v| v.name == "COPY b.txt")
            .unwrap();
        let key = v.keys[0];
        serde_json::from_str(&fx.store.cache_record(&key).unwrap().unwrap().preimage).unwrap()
    };
    let why = dray_solver::explain(&preimage(&first), &preimage(&out));
    assert_eq!(why, ["input 1: the content of /b.txt changed"]);

    // Editing a file no COPY includes changes nothing.
    fx.write("unrelated.txt", "x");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty());
}

#[test]
fn editing_an_ignored_file_reruns_nothing() {
    let fx = Fixture::new();
    fx.write(".dockerignore", "src/*.log\n");
    fx.write("src/main.rs", "fn main() {}");
    fx.write("src/debug.log", "1");
    let head = run(
        &copy(&State::scratch(), "/src", "/app", "COPY src"),
        0,
        "/o",
        "x",
        "RUN",
    );
    let d = def(&head);
    let out = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(
        read_in(&layers, "/app/main.rs").as_deref(),
        Some("fn main() {}")
    );
    assert!(
        read_in(&layers, "/app/debug.log").is_none(),
        "ignored files are not copied"
    );

    fx.write("src/debug.log", "2");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty(), "{:?}", rep.started());

    fx.write("src/main.rs", "fn main() { changed() }");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(rep.started(), ["COPY src", "RUN"]);
}

#[test]
fn no_cache_reruns_everything_and_ignore_cache_only_its_vertex() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    let d = def(&two_copies_and_run());
    rt().block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();

    let rep = RecordingReporter::new();
    let opts = SolveOptions {
        no_cache: true,
        ..SolveOptions::default()
    };
    rt().block_on(fx.solver_with(opts).solve(&d, &rep)).unwrap();
    assert_eq!(rep.started(), ["COPY a.txt", "COPY b.txt", "RUN build"]);
    assert!(rep.cached().is_empty());

    // `ignore_cache` on the second COPY: it and its dependents rerun, the first COPY hits.
    let a = copy(&State::scratch(), "/a.txt", "/app/", "COPY a.txt");
    let mut meta = OpMetadata::named("COPY b.txt");
    meta.ignore_cache = true;
    let b = copy(&a, "/b.txt", "/app/", "COPY b.txt").with_metadata(meta);
    let d2 = def(&run(&b, 0, "/out", "built", "RUN build"));
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d2, &rep)).unwrap();
    assert_eq!(rep.cached(), ["COPY a.txt"]);
    assert_eq!(rep.started(), ["COPY b.txt", "RUN build"]);
}

#[test]
fn identical_vertices_in_two_stages_run_once() {
    let fx = Fixture::new();
    // Two "stages" that both start with the same RUN on scratch, then diverge and are merged.
    let shared_a = run(
        &State::scratch(),
        50,
        "/shared",
        "s",
        "RUN shared (stage a)",
    );
    let shared_b = run(
        &State::scratch(),
        50,
        "/shared",
        "s",
        "RUN shared (stage b)",
    );
    assert_eq!(shared_a.digest(), shared_b.digest());
    let a = run(&shared_a, 0, "/a", "a", "RUN a");
    let b = run(&shared_b, 0, "/b", "b", "RUN b");
    let d = def(&State::merge([a, b]).named("merge"));
    let out = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    let runs = fx.exec.runs();
    assert_eq!(
        runs.iter().filter(|r| r.starts_with("RUN shared")).count(),
        1,
        "{runs:?}"
    );
    assert_eq!(runs.len(), 3);
    // The merged chain stacks both stages: shared, a, shared, b.
    let chain = out.head.chain_ids();
    assert_eq!(chain.len(), 4);
    assert_eq!(chain[0], chain[2]);
}

#[test]
fn independent_chains_overlap_in_time() {
    let fx = Fixture::new();
    let a = run(&State::scratch(), 400, "/a", "a", "RUN a");
    let b = run(&State::scratch(), 400, "/b", "b", "RUN b");
    let d = def(&State::merge([a, b]).named("merge"));
    let rep = RecordingReporter::new();
    let opts = SolveOptions {
        max_parallelism: 2,
        ..SolveOptions::default()
    };
    rt().block_on(fx.solver_with(opts).solve(&d, &rep)).unwrap();
    let at = |rep: &RecordingReporter, name: &str, kind: EventKind| -> SystemTime {
        rep.events()
            .into_iter()
            .find(|e| e.name == name && e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} for {name}"))
            .at
    };
    let (a0, a1) = (
        at(&rep, "RUN a", EventKind::Started),
        at(&rep, "RUN a", EventKind::Done),
    );
    let (b0, b1) = (
        at(&rep, "RUN b", EventKind::Started),
        at(&rep, "RUN b", EventKind::Done),
    );
    assert!(
        a0 < b1 && b0 < a1,
        "intervals must overlap: a={a0:?}..{a1:?} b={b0:?}..{b1:?}"
    );

    // With one permit the same steps are serialized.
    let fx = Fixture::new();
    let rep = RecordingReporter::new();
    let opts = SolveOptions {
        max_parallelism: 1,
        ..SolveOptions::default()
    };
    rt().block_on(fx.solver_with(opts).solve(&d, &rep)).unwrap();
    let (a0, a1) = (
        at(&rep, "RUN a", EventKind::Started),
        at(&rep, "RUN a", EventKind::Done),
    );
    let (b0, b1) = (
        at(&rep, "RUN b", EventKind::Started),
        at(&rep, "RUN b", EventKind::Done),
    );
    assert!(a1 <= b0 || b1 <= a0, "one permit must serialize the steps");
}

#[test]
fn first_error_cancels_the_rest_and_names_the_step() {
    let fx = Fixture::new();
    let slow = run(&State::scratch(), 10_000, "/slow", "s", "RUN slow");
    let failing = State::scratch()
        .run(dray_llb::ExecSpec::new(["fail", "RUN slow"]))
        .root()
        .named("RUN failing");
    let d = def(&State::merge([slow, failing]).named("merge"));
    let rep = RecordingReporter::new();
    let started = std::time::Instant::now();
    let err = rt().block_on(fx.solver().solve(&d, &rep)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow step was not cancelled"
    );
    let SolveError::Step { name, source, .. } = &err else {
        panic!("expected a step error, got {err:?}");
    };
    assert_eq!(name, "RUN failing");
    assert!(matches!(source, OpError::ExitCode { code: 1, .. }));
    assert!(err.to_string().contains("RUN failing"));
    let events = rep.events();
    assert!(
        !events
            .iter()
            .any(|e| e.name == "RUN slow" && e.kind == EventKind::Done)
    );
    assert!(events.iter().any(|e| e.name == "RUN failing"
        && matches!(&e.kind, EventKind::Log { bytes, .. } if bytes == b"boom\n")));
    let failed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Failed { .. }))
        .map(|e| (e.name.as_str(), e.kind.clone()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        matches!(&failed[0], ("RUN failing", EventKind::Failed { error }) if error.contains("exited with code 1")),
        "{failed:?}"
    );
    assert!(
        matches!(&failed[1], ("RUN slow", EventKind::Failed { error }) if error.contains("cancelled")),
        "{failed:?}"
    );
    assert_eq!(rep.summary().unwrap().failed, 1);
}

#[test]
fn a_scratch_head_is_empty() {
    let fx = Fixture::new();
    let out = rt()
        .block_on(
            fx.solver()
                .solve(&def(&State::scratch()), &RecordingReporter::new()),
        )
        .unwrap();
    assert!(out.head.is_empty());
    assert!(out.head.chain_ids().is_empty());
}

#[test]
fn run_without_an_executor_fails_clearly() {
    let fx = Fixture::new();
    let head = State::scratch()
        .run(dray_llb::ExecSpec::new(["make"]))
        .root()
        .named("[build 2/2] RUN make");
    let solver = dray_solver::Solver::new(fx.store.clone());
    let err = rt()
        .block_on(solver.solve(&def(&head), &RecordingReporter::new()))
        .unwrap_err();
    let SolveError::Step { name, source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "[build 2/2] RUN make");
    assert!(matches!(source, OpError::NoExecutor));
    assert_eq!(
        source.to_string(),
        "RUN is not supported yet: the sandbox executor is not built"
    );
}

#[test]
fn preimages_are_stored_and_reproduce_their_keys() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    let out = rt()
        .block_on(
            fx.solver()
                .solve(&def(&two_copies_and_run()), &RecordingReporter::new()),
        )
        .unwrap();
    assert_eq!(out.vertices.len(), 3);
    for (vertex, outcome) in &out.vertices {
        assert_eq!(outcome.status, VertexStatus::Executed);
        let key = outcome.keys[0];
        let record = fx
            .store
            .cache_record(&key)
            .unwrap()
            .expect("a record per step");
        let pre: Preimage = serde_json::from_str(&record.preimage).unwrap();
        assert_eq!(pre.key(), outcome.keys[0]);
        assert_eq!(&pre.vertex, vertex);
        assert_eq!(pre.name, outcome.name);
        assert_eq!(pre.schema, dray_solver::KEY_SCHEMA);
    }
    // The COPY's preimage keys on content, with the full source path as selector and only the
    // base name in the op.
    let copy_a = out
        .vertices
        .values()
        .find(|o| o.name == "COPY a.txt")
        .unwrap();
    let key = copy_a.keys[0];
    let pre: Preimage =
        serde_json::from_str(&fx.store.cache_record(&key).unwrap().unwrap().preimage).unwrap();
    let json = serde_json::to_string(&pre.op).unwrap();
    assert!(json.contains(r#""src":"a.txt""#), "{json}");
    assert!(
        matches!(&pre.deps[1], dray_solver::ResolvedDep::Content { selectors, .. } if selectors == &["/a.txt"])
    );
}

#[test]
fn copy_key_follows_mode_but_not_mtime() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    let d = def(&copy(&State::scratch(), "/a.txt", "/a.txt", "COPY a"));
    let key = |fx: &Fixture| {
        rt().block_on(fx.solver().solve(&d, &RecordingReporter::new()))
            .unwrap()
            .head_key
    };
    let k0 = key(&fx);
    let f = std::fs::File::options()
        .write(true)
        .open(fx.ctx.join("a.txt"))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    assert_eq!(key(&fx), k0, "mtime must not change the key");
    std::fs::set_permissions(fx.ctx.join("a.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let k1 = key(&fx);
    assert_ne!(k1, k0, "mode must change the key");
}

#[test]
fn unchanged_context_is_hashed_without_reading_file_bytes() {
    let fx = Fixture::new();
    fx.write("a.txt", &"A".repeat(10_000));
    // The memo refuses stamps younger than two seconds (they could still change unseen).
    std::thread::sleep(Duration::from_millis(2_100));
    let d = def(&copy(&State::scratch(), "/a.txt", "/a.txt", "COPY a"));
    let first = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    assert!(first.stats.hashed_bytes >= 10_000);
    let again = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    assert_eq!(again.stats.hashed_bytes, 0);
    assert_eq!(again.head_key, first.head_key);
}

#[test]
fn merges_and_steps_on_them_are_cached_with_their_full_chain() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    let a = copy(&State::scratch(), "/a.txt", "/a.txt", "COPY a");
    let b = run(&State::scratch(), 0, "/b", "b", "RUN b");
    let merged = State::merge([a, b]).named("merge");
    let head = merged
        .file(FileChain::new().then(FileAction::Mkdir(Mkdir {
            path: "/made".into(),
            mode: 0o700,
            make_parents: true,
            owner: None,
            timestamp: None,
        })))
        .named("WORKDIR /made");
    let d = def(&head);
    let first = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    assert_eq!(first.head.chain_ids().len(), 3);
    let layers = first.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/a.txt").as_deref(), Some("A"));
    assert_eq!(read_in(&layers, "/b").as_deref(), Some("b"));
    let made = layers[2].join("made");
    assert_eq!(
        made.metadata().unwrap().permissions().mode() & 0o7777,
        0o700
    );

    let rep = RecordingReporter::new();
    let again = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty(), "{:?}", rep.events());
    assert_eq!(
        rep.cached().last().map(String::as_str),
        Some("WORKDIR /made")
    );
    assert_eq!(again.head.chain_ids(), first.head.chain_ids());
}

#[test]
fn copy_from_another_stage_keys_on_its_content() {
    let fx = Fixture::new();
    let build = run(&State::scratch(), 0, "/bin/app", "binary", "RUN build");
    let copy_from = |name: &str| {
        State::scratch()
            .file(FileChain::new().copy(
                &build,
                dray_llb::Copy {
                    src: "/bin/app".into(),
                    dest: "/usr/local/bin/".into(),
                    create_dest_path: true,
                    ..dray_llb::Copy::default()
                },
            ))
            .named(name)
    };
    let d = def(&copy_from("COPY --from=build"));
    let out = rt()
        .block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(layers.len(), 1, "a COPY --from onto scratch is one layer");
    assert_eq!(
        read_in(&layers, "/usr/local/bin/app").as_deref(),
        Some("binary")
    );
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(rep.cached(), ["RUN build", "COPY --from=build"]);
    assert!(rep.started().is_empty());
}

#[test]
fn missing_image_names_the_reference() {
    let fx = Fixture::new();
    let img =
        State::image(dray_llb::ImageRef::parse("busybox:1.36").unwrap()).named("FROM busybox");
    let head = copy(&img, "/a", "/a", "COPY a");
    fx.write("a", "a");
    let err = rt()
        .block_on(fx.solver().solve(&def(&head), &RecordingReporter::new()))
        .unwrap_err();
    let SolveError::Step { name, source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "FROM busybox");
    assert!(
        matches!(source, OpError::ImageNotFound { reference } if reference == "docker.io/library/busybox:1.36"),
        "{source:?}"
    );
    let _ = context();
}

#[test]
fn exec_specs_stack_layers_top_first_and_give_cache_mounts_a_directory() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    let base = copy(&State::scratch(), "/a.txt", "/a.txt", "COPY a");
    let step = base
        .run(
            dray_llb::ExecSpec::new(["fake", "0", "/out", "x"])
                .mount(dray_llb::Mount::cache(
                    "/root/.cache",
                    "deps",
                    dray_llb::Sharing::Shared,
                ))
                .proxy_env(vec!["HTTPS_PROXY=http://proxy:1".into()]),
        )
        .root()
        .named("RUN with cache");
    let out = rt()
        .block_on(fx.solver().solve(&def(&step), &RecordingReporter::new()))
        .unwrap();
    let specs = fx.exec.specs.lock().unwrap().clone();
    assert_eq!(specs.len(), 1);
    let spec = &specs[0];
    let chain = out.head.chain_ids();
    assert_eq!(spec.rootfs.lowers, [fx.store.fs_path(&chain[0])]);
    assert_eq!(spec.rootfs.upper, fx.store.fs_path(&chain[1]));
    assert_eq!(spec.meta.proxy_env, ["HTTPS_PROXY=http://proxy:1"]);
    let cache = spec.mounts[0]
        .cache_dir
        .as_ref()
        .expect("a cache directory");
    assert!(cache.is_dir());
    assert!(cache.starts_with(fx.store.root().path()));

    // Another proxy does not change the key.
    let other = base
        .run(
            dray_llb::ExecSpec::new(["fake", "0", "/out", "x"])
                .mount(dray_llb::Mount::cache(
                    "/root/.cache",
                    "deps",
                    dray_llb::Sharing::Shared,
                ))
                .proxy_env(vec!["HTTPS_PROXY=http://elsewhere:2".into()]),
        )
        .root()
        .named("RUN with cache");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&def(&other), &rep))
        .unwrap();
    assert!(rep.started().is_empty());
}

#[test]
fn a_run_that_mounts_the_context_keys_on_its_content() {
    let fx = Fixture::new();
    fx.write("src/a.c", "int a;");
    fx.write("other.txt", "o");
    let step = State::scratch()
        .run(
            dray_llb::ExecSpec::new(["fake", "0", "/out", "x"]).mount(
                dray_llb::Mount::bind("/src", context())
                    .selector("/src")
                    .readonly(),
            ),
        )
        .root()
        .named("RUN --mount=type=bind");
    let d = def(&step);
    rt().block_on(fx.solver().solve(&d, &RecordingReporter::new()))
        .unwrap();
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(
        rep.started().is_empty(),
        "the context's per-build key must not leak"
    );
    fx.write("other.txt", "changed");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty(), "outside the mount's selector");
    fx.write("src/a.c", "int b;");
    let rep = RecordingReporter::new();
    rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert_eq!(rep.started(), ["RUN --mount=type=bind"]);
}
