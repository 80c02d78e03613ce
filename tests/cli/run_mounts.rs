//! `RUN --mount` through the native sandbox: bind (context, stage; read-only and `rw`),
//! cache, tmpfs, secret. Their contents never reach a layer.

use crate::harness::{TestDir, text};
use crate::run::{BASE, base_root, build_in, build_ok, layers, unique};

#[test]
fn bind_mounts_read_the_context_and_stages_and_discard_writes() {
    let dir = TestDir::new();
    dir.write("ctx/data/hello.txt", "from the context\n");
    let name = unique("bind");
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE} AS stage\n\
             RUN mkdir /out && echo from a stage > /out/s.txt\n\
             FROM {BASE}\n\
             RUN --mount=type=bind,target=/ctx cat /ctx/data/hello.txt > /copied.txt \
                 && (touch /ctx/new 2>/dev/null && echo writable || echo read-only) >> /copied.txt\n\
             RUN --mount=type=bind,from=stage,source=/out,target=/in cat /in/s.txt > /staged.txt\n"
        ),
        &["-t", &name],
    );
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["copied.txt"].data, b"from the context\nread-only\n");
    assert_eq!(files["staged.txt"].data, b"from a stage\n");
    assert!(!dir.path().join("ctx/new").exists());
    for layer in layers(base_root(), &name).iter().skip(2) {
        for e in layer {
            assert!(
                !e.path.starts_with("ctx") && !e.path.starts_with("in"),
                "{e:?}"
            );
        }
    }
}

#[test]
fn rw_bind_mounts_are_writable_within_the_step_and_discarded() {
    let dir = TestDir::new();
    dir.write("ctx/data/hello.txt", "from the context\n");
    let before = context_listing(&dir);
    let name = unique("rw-bind");
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE} AS stage\n\
             RUN mkdir /out && echo from a stage > /out/s.txt\n\
             FROM {BASE}\n\
             RUN --mount=type=bind,target=/ctx,rw \
                 --mount=type=bind,from=stage,source=/out,target=/in,rw \
                 echo written > /ctx/new.txt && echo changed > /ctx/data/hello.txt \
                 && echo written > /in/new.txt && rm /in/s.txt \
                 && cat /ctx/new.txt /ctx/data/hello.txt /in/new.txt > /seen.txt \
                 && (test -e /in/s.txt && echo kept || echo removed) >> /seen.txt\n\
             RUN --mount=type=bind,from=stage,source=/out,target=/in cat /in/s.txt > /after.txt\n"
        ),
        &["-t", &name],
    );
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(
        files["seen.txt"].data, b"written\nchanged\nwritten\nremoved\n",
        "the writes are visible within the step"
    );
    assert_eq!(
        files["after.txt"].data, b"from a stage\n",
        "the stage itself is unchanged for the next step"
    );
    for layer in layers(base_root(), &name).iter().skip(2) {
        for e in layer {
            assert!(
                !e.path.starts_with("ctx") && !e.path.starts_with("in"),
                "a discarded write reached a layer: {e:?}"
            );
        }
    }
    assert_eq!(
        context_listing(&dir),
        before,
        "the context on the host is unchanged"
    );
}

/// Every path under `ctx/` but the Dockerfile, with its content (directories as empty),
/// sorted.
fn context_listing(dir: &TestDir) -> Vec<(String, Vec<u8>)> {
    let root = dir.path().join("ctx");
    let mut out: Vec<_> = crate::run::walkdir(root.clone())
        .into_iter()
        .filter(|p| !p.ends_with("Dockerfile"))
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_default();
            (p.strip_prefix(&root).unwrap().display().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_context_bind_mount_hides_what_dockerignore_excludes() {
    let dir = TestDir::new();
    dir.write("ctx/keep.txt", "kept\n");
    dir.write("ctx/secret.key", "hidden\n");
    dir.write("ctx/build/out.o", "hidden\n");
    dir.write("ctx/docs/a.md", "hidden\n");
    dir.write("ctx/docs/keep.md", "re-included\n");
    dir.write("ctx/.dockerignore", "*.key\nbuild\ndocs\n!docs/keep.md\n");
    let name = unique("bind-ignore");
    let list = "cd /ctx && find . | sort | tr '\\n' ' '";
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=bind,target=/ctx ({list}; cat /ctx/docs/keep.md) > /ro.txt\n\
             RUN --mount=type=bind,target=/ctx,rw ({list}; echo new > /ctx/secret.key; cat /ctx/secret.key) > /rw.txt\n\
             RUN --mount=type=bind,target=/docs,source=docs (cd /docs && find . | sort | tr '\\n' ' ') > /sel.txt\n"
        ),
        &["-t", &name],
    );
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    let context = ". ./.dockerignore ./Dockerfile ./docs ./docs/keep.md ./keep.txt ";
    assert_eq!(
        String::from_utf8_lossy(&files["ro.txt"].data),
        format!("{context}re-included\n")
    );
    assert_eq!(
        String::from_utf8_lossy(&files["rw.txt"].data),
        format!("{context}new\n"),
        "an rw mount hides them too, and a hidden path can be written"
    );
    assert_eq!(
        String::from_utf8_lossy(&files["sel.txt"].data),
        ". ./keep.md "
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ctx/secret.key")).unwrap(),
        "hidden\n"
    );
}

#[test]
fn cache_mounts_persist_across_builds_and_stay_out_of_layers() {
    let dir = TestDir::new();
    let id = unique("cache-id");
    let name = unique("cache");
    let step = |n: u32| {
        format!(
            "FROM {BASE}\n\
             RUN --mount=type=cache,id={id},target=/var/cache/app \
                 echo run {n} >> /var/cache/app/log && wc -l < /var/cache/app/log > /count\n"
        )
    };
    build_ok(base_root(), &dir, &step(1), &["-t", &name]);
    build_ok(base_root(), &dir, &step(2), &["-t", &name]);
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["count"].data, b"2\n");
    let last = layers(base_root(), &name).pop().unwrap();
    assert_eq!(
        last.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["count"],
        "neither the cache's content nor its mount point"
    );
}

#[test]
fn cache_mount_owner_and_mode_apply_when_the_cache_is_created() {
    let dir = TestDir::new();
    let id = unique("cache-owner");
    let name = unique("cache-owner");
    let step = |uid: u32| {
        format!(
            "FROM {BASE}\n\
             RUN mkdir -m 1777 /out\n\
             USER {uid}:2345\n\
             RUN --mount=type=cache,id={id},target=/var/cache/app,uid={uid},gid=2345,mode=0750 \
                 stat -c '%u %g %a' /var/cache/app > /out/owner \
                 && echo by {uid} >> /var/cache/app/log && cat /var/cache/app/log >> /out/owner\n"
        )
    };
    build_ok(base_root(), &dir, &step(1234), &["-t", &name]);
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(
        files["out/owner"].data, b"1234 2345 750\nby 1234\n",
        "created with the mount's owner and mode, writable by that user"
    );
    // The cache exists now: other settings do not change it (BuildKit applies them on
    // creation only), and its content persisted.
    build_ok(base_root(), &dir, &step(0), &["-t", &name]);
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["out/owner"].data, b"1234 2345 750\nby 1234\nby 0\n");
}

#[test]
fn a_cache_mount_from_a_stage_starts_with_its_content_once() {
    let dir = TestDir::new();
    let id = unique("cache-from");
    let name = unique("cache-from");
    let dockerfile = |seed: &str| {
        format!(
            "FROM {BASE} AS seed\n\
             RUN mkdir -p /seed/sub && echo {seed} > /seed/sub/file && chown -R 42:43 /seed\n\
             FROM {BASE}\n\
             RUN --mount=type=cache,id={id},target=/c,from=seed,source=/seed \
                 (stat -c '%u %g' /c/sub/file; cat /c/sub/file; cat /c/note 2>/dev/null || true) > /seen \
                 && echo noted > /c/note\n"
        )
    };
    build_ok(base_root(), &dir, &dockerfile("first"), &["-t", &name]);
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["seen"].data, b"42 43\nfirst\n");
    // A new seed does not replace an existing cache.
    build_ok(base_root(), &dir, &dockerfile("second"), &["-t", &name]);
    let files = crate::store::files(base_root(), &format!("docker.io/library/{name}:latest"));
    assert_eq!(files["seen"].data, b"42 43\nfirst\nnoted\n");
}

#[test]
fn tmpfs_mounts_are_sized_and_empty_afterwards() {
    let dir = TestDir::new();
    let name = unique("tmpfs");
    build_ok(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=tmpfs,target=/scratch,size=1m \
                 (dd if=/dev/zero of=/scratch/big bs=1M count=2 2>/dev/null && echo fit || echo full) > /result\n"
        ),
        &["-t", &name],
    );
    let last = layers(base_root(), &name).pop().unwrap();
    assert_eq!(
        last.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["result"]
    );
    assert_eq!(last[0].data, b"full\n");
}

#[test]
fn a_missing_required_secret_is_an_error_naming_it_and_its_line() {
    let dir = TestDir::new();
    let out = build_in(
        base_root(),
        &dir,
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=optional-token cat /run/secrets/optional-token 2>/dev/null || echo absent\n\
             RUN --mount=type=secret,id=deploy-key,required=true cat /run/secrets/deploy-key\n"
        ),
        &[],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("secret \"deploy-key\" is required"),
        "{stderr}"
    );
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
    assert!(
        stderr.contains("absent"),
        "an optional secret may be missing: {stderr}"
    );
}
