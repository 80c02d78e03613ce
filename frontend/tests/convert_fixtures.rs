//! Converter fixtures: `testdata/convert/<case>/Dockerfile` against a hand-written
//! `expected-config.json` (the image config BuildKit would write, minus `created` and the layer
//! diff IDs), plus graph properties per case. `llb.json` holds the graph dump; regenerate it
//! with `DRAY_BLESS=1`.

mod convert_support;

use dray_llb::{
    FileAction, Mode, MountKind, NetMode, Op, SecurityMode, Sharing, SourceAttrs, SourceId, UserOpt,
};

use convert_support::*;

/// Converts `case`, compares the image config exactly, and checks (or blesses) the graph dump.
fn check(case: &str) -> dray_frontend::convert::Conversion {
    let out = convert_case(case);
    let dir = root().join(case);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected-config.json")).unwrap())
            .unwrap();
    let actual = serde_json::to_value(&out.image).unwrap();
    assert_eq!(
        actual,
        expected,
        "{case}: image config differs; actual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
    out.definition.validate().unwrap();
    let dump = out.definition.to_json_pretty();
    let path = dir.join("llb.json");
    if std::env::var_os("DRAY_BLESS").is_some() {
        std::fs::write(&path, &dump).unwrap();
    } else {
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{case}: no llb.json; run with DRAY_BLESS=1"));
        assert_eq!(
            dump, want,
            "{case}: graph dump differs (DRAY_BLESS=1 to update)"
        );
    }
    out
}

#[test]
fn multistage() {
    let out = check("multistage");
    let def = &out.definition;
    assert_eq!(
        names(def),
        [
            // The FROM node is shared; the name of the first use from the head wins.
            "[stage-2 1/3] FROM docker.io/library/alpine:3.20@sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a",
            "[build 2/4] WORKDIR /src",
            "[internal] load build context",
            "[build 3/4] COPY --chown=builder:builder greet.sh ./",
            "[build 4/4] RUN ./greet.sh \"1.22\" > /out",
            "[stage-2 2/3] COPY --from=build /out /usr/local/bin/greet",
            "[stage-2 3/3] WORKDIR app",
        ]
    );
    // Both stages start FROM the same pinned image: one node. The unreachable stage adds
    // nothing, not even its context path.
    assert_eq!(def.nodes.len(), 7);
    assert_eq!(out.context_paths, ["greet.sh"]);
    assert_eq!(
        out.base_image.unwrap().to_string(),
        "docker-image://docker.io/library/alpine:3.20@sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a"
    );
    let copy = file(node_named(
        def,
        "[build 3/4] COPY --chown=builder:builder greet.sh ./",
    ));
    let FileAction::Copy(c) = &copy.actions[0].action else {
        panic!()
    };
    assert_eq!((c.src.as_str(), c.dest.as_str()), ("/greet.sh", "/src/"));
    let owner = c.owner.as_ref().unwrap();
    assert_eq!(owner.user, Some(dray_llb::UserOpt::Name("builder".into())));
    assert_eq!(owner.group, Some(dray_llb::UserOpt::Name("builder".into())));
    assert!(c.follow_symlinks && c.dir_copy_contents && c.allow_wildcard && c.create_dest_path);
    assert!(!c.attempt_unpack);
    // WORKDIR after USER creates the directory owned by that user.
    let mkdir = file(node_named(def, "[stage-2 3/3] WORKDIR app"));
    let FileAction::Mkdir(m) = &mkdir.actions[0].action else {
        panic!()
    };
    assert_eq!(
        (m.path.as_str(), m.mode, m.make_parents),
        ("/app", 0o755, true)
    );
    assert_eq!(
        m.owner.as_ref().unwrap().user,
        Some(dray_llb::UserOpt::Name("nobody".into()))
    );
    let run = exec(node_named(
        def,
        "[build 4/4] RUN ./greet.sh \"1.22\" > /out",
    ));
    assert_eq!(
        run.meta.args,
        ["/bin/sh", "-c", "./greet.sh \"$GO_VERSION\" > /out"]
    );
    assert_eq!(run.meta.cwd, "/src");
    assert_eq!(
        run.meta.env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GO_VERSION=1.22"
        ]
    );
    // Source locations point at the instruction.
    let meta = &def.metadata[&def.nodes[4].digest()];
    assert_eq!(meta.source_location.as_ref().unwrap().start_line, 8);
}

#[test]
fn args_env_and_proxies() {
    let out = check("args-env");
    let def = &out.definition;
    assert_eq!(
        names(def)
            .iter()
            .filter(|n| n.starts_with('['))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "[1/5] FROM docker.io/library/alpine:3.20@sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a",
            "[2/5] WORKDIR /src",
            "[internal] load build context",
            "[3/5] COPY --chown=builder:builder greet.sh ./",
            "[4/5] RUN ./greet.sh \"cli\" > /out",
            "[5/5] RUN --network=none echo /out2",
        ]
    );
    // SOURCE_DATE_EPOCH stamps copied files and WORKDIR directories.
    assert_eq!(out.epoch, Some(1_700_000_000));
    let FileAction::Mkdir(m) = &file(node_named(def, "[2/5] WORKDIR /src")).actions[0].action
    else {
        panic!()
    };
    assert_eq!(m.timestamp, Some(1_700_000_000));
    let copy = file(node_named(
        def,
        "[3/5] COPY --chown=builder:builder greet.sh ./",
    ));
    let FileAction::Copy(c) = &copy.actions[0].action else {
        panic!()
    };
    assert_eq!(c.timestamp, Some(1_700_000_000));
    let last = exec(node_named(def, "[5/5] RUN --network=none echo /out2"));
    assert_eq!(last.meta.args, ["/bin/sh", "-c", "echo $OUT"]);
    assert_eq!(last.network, NetMode::None);
    assert_eq!(
        last.meta.env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/extra",
            "GO_VERSION=1.22",
            "TARGET=cli",
            "SRC=/src",
            "OUT=/out2",
        ]
    );
    // Proxies reach the process beside the env, never the config or history.
    assert_eq!(
        last.meta.proxy_env,
        ["HTTP_PROXY=http://proxy.invalid:3128"]
    );
    assert!(!serde_json::to_string(&out.image).unwrap().contains("proxy"));
    // ... nor the graph's identity: the same build without a proxy has the same digests.
    let mut opts = case_options("args-env");
    opts.resolve.build_args.remove("HTTP_PROXY");
    assert!(opts.resolve.build_args.contains_key("SOURCE_DATE_EPOCH"));
    let src = std::fs::read(root().join("args-env/Dockerfile")).unwrap();
    let direct = dray_frontend::convert::convert_source(&src, &opts, &images()).unwrap();
    assert_eq!(direct.definition.digests(), def.digests());
    let last = exec(node_named(
        &direct.definition,
        "[5/5] RUN --network=none echo /out2",
    ));
    assert!(last.meta.proxy_env.is_empty());
}

#[test]
fn metadata_only_instructions() {
    let out = check("metadata");
    // Nothing but config: the graph is the empty filesystem.
    assert_eq!(out.definition.nodes.len(), 1);
    assert!(matches!(&out.definition.nodes[0].op, Op::Source(s) if s.id == SourceId::Scratch));
    assert_eq!(out.base_image, None);
}

#[test]
fn entrypoint_resets_an_inherited_cmd() {
    let out = check("entrypoint-reset");
    assert_eq!(out.definition.nodes.len(), 1);
}

#[test]
fn copy_flags() {
    let out = check("copy-flags");
    let def = &out.definition;
    // `COPY app` and friends: only the paths the build reads are transferred.
    assert_eq!(
        out.context_paths,
        [
            "app",
            "bin/helper",
            "bin/tool",
            "rootfs.tar.gz",
            "scripts/run.sh",
            "src/pkg/**/*.go"
        ]
    );
    let context = def
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            Op::Source(s) if matches!(s.id, SourceId::Local { .. }) => Some(s),
            _ => None,
        })
        .unwrap();
    let SourceAttrs::Local(attrs) = &context.attrs else {
        panic!()
    };
    assert_eq!(attrs.exclude_patterns, ["**/*.tmp", ".git"]);

    let two = file(node_named(
        def,
        "[stage-1  2/10] COPY --chmod=0755 bin/tool bin/helper ./bin/",
    ));
    assert_eq!(two.actions.len(), 2);
    for (step, src) in two.actions.iter().zip(["/bin/tool", "/bin/helper"]) {
        let FileAction::Copy(c) = &step.action else {
            panic!()
        };
        assert_eq!((c.src.as_str(), c.dest.as_str()), (src, "/srv/bin/"));
        assert_eq!(c.mode, Some(Mode::Octal(0o755)));
    }
    let sym = file(node_named(
        def,
        "[stage-1  3/10] COPY --chmod=u+x,g-w scripts/run.sh /usr/local/bin/run",
    ));
    let FileAction::Copy(c) = &sym.actions[0].action else {
        panic!()
    };
    assert_eq!(c.mode, Some(Mode::Symbolic("u+x,g-w".into())));

    // --link: the copy lands on scratch, and a merge stacks it on the stage.
    let link = "[stage-1  4/10] COPY --link --from=assets /assets/css static/css";
    let copied = node_named(def, link);
    assert!(
        matches!(&node(def, &copied.inputs[0].node).op, Op::Source(s) if s.id == SourceId::Scratch)
    );
    let FileAction::Copy(c) = &file(copied).actions[0].action else {
        panic!()
    };
    assert_eq!(
        (c.src.as_str(), c.dest.as_str()),
        ("/assets/css", "/srv/static/css")
    );
    let merge = node_named(
        def,
        "[stage-1  4/10] LINK COPY --link --from=assets /assets/css static/css",
    );
    assert!(matches!(merge.op, Op::Merge(_)));
    assert_eq!(merge.inputs.len(), 2);
    assert_eq!(merge.inputs[1].node, copied.digest());

    let parents = file(node_named(
        def,
        "[stage-1  5/10] COPY --parents src/./pkg/**/*.go /build/",
    ));
    let FileAction::Copy(c) = &parents.actions[0].action else {
        panic!()
    };
    assert_eq!((c.src.as_str(), c.dest.as_str()), ("/src", "/build/"));
    assert_eq!(c.include_patterns, ["pkg/**/*.go"]);

    let excl = file(node_named(
        def,
        "[stage-1  6/10] COPY --exclude=*.md --exclude=docs/ app /srv/app",
    ));
    let FileAction::Copy(c) = &excl.actions[0].action else {
        panic!()
    };
    assert_eq!(c.exclude_patterns, ["*.md", "docs/"]);

    // A heredoc is a file made on scratch, then copied.
    let here = node_named(def, "[stage-1  7/10] COPY <<EOF /etc/motd");
    let FileAction::Copy(c) = &file(here).actions[0].action else {
        panic!()
    };
    assert_eq!((c.src.as_str(), c.dest.as_str()), ("/EOF", "/etc/motd"));
    let inline = node(def, &here.inputs[1].node);
    let FileAction::Mkfile(m) = &file(inline).actions[0].action else {
        panic!()
    };
    assert_eq!(
        (m.path.as_str(), m.mode, m.data.as_str()),
        ("/EOF", 0o644, "Welcome to dray\n")
    );

    let tar = file(node_named(def, "[stage-1  8/10] ADD rootfs.tar.gz /"));
    let FileAction::Copy(c) = &tar.actions[0].action else {
        panic!()
    };
    assert!(c.attempt_unpack);

    // BuildKit names the download like the copy.
    let url_name = "[stage-1  9/10] ADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef https://example.com/releases/tool-1.0.tar.gz /opt/";
    let url = node_of_kind(def, url_name, "file");
    node_of_kind(def, url_name, "source");
    let FileAction::Copy(c) = &file(url).actions[0].action else {
        panic!()
    };
    assert_eq!(
        (c.src.as_str(), c.dest.as_str(), c.attempt_unpack),
        ("/tool-1.0.tar.gz", "/opt/", false)
    );
    let Op::Source(http) = &node(def, &url.inputs[1].node).op else {
        panic!()
    };
    let SourceAttrs::Http(attrs) = &http.attrs else {
        panic!()
    };
    assert_eq!(attrs.filename.as_deref(), Some("tool-1.0.tar.gz"));
    assert_eq!(
        attrs.checksum.unwrap().to_string(),
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );

    // --from=<image> is the image pinned by digest.
    let bb = node_named(
        def,
        "[stage-1 10/10] COPY --from=busybox:1.36 /bin/busybox /bin/",
    );
    let Op::Source(img) = &node(def, &bb.inputs[1].node).op else {
        panic!()
    };
    assert_eq!(
        img.id.to_string(),
        "docker-image://docker.io/library/busybox:1.36@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7"
    );
}

#[test]
fn identical_stages_are_one_node() {
    let out = check("dedup");
    let def = &out.definition;
    // alpine, one RUN (both stages' RUN are the same op), scratch, two copies.
    assert_eq!(def.nodes.len(), 5);
    let execs = def
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Exec(_)))
        .count();
    assert_eq!(execs, 1);
    let a = node_named(def, "[final 1/2] COPY --from=one /shared /a");
    let b = node_named(def, "[final 2/2] COPY --from=two /shared /b");
    assert_eq!(a.inputs[1], b.inputs[1]);
}

#[test]
fn image_onbuild_triggers_run_first() {
    let out = check("onbuild-image");
    let def = &out.definition;
    assert_eq!(
        names(def)
            .iter()
            .filter(|n| n.starts_with("[1")
                || n.starts_with("[2")
                || n.starts_with("[3")
                || n.starts_with("[4"))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "[1/4] FROM example.com/team/onbuild-base:1@sha256:5d1c8e3a9a0f7b1e2c4d6f8a0b2c4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d",
            "[2/4] ONBUILD COPY . /app",
            "[3/4] ONBUILD RUN make -C /app",
            "[4/4] RUN echo release",
        ]
    );
    let run = exec(node_named(def, "[3/4] ONBUILD RUN make -C /app"));
    assert_eq!(
        (run.meta.cwd.as_str(), run.meta.user.as_str()),
        ("/app", "builder")
    );
}

#[test]
fn run_mounts_and_heredocs() {
    let out = check("run-mounts-heredoc");
    let def = &out.definition;
    let first = def
        .nodes
        .iter()
        .find(|n| {
            def.metadata
                .get(&n.digest())
                .and_then(|m| m.custom_name())
                .is_some_and(|c| c.starts_with("[stage-1 2/5] RUN --mount=type=cache"))
        })
        .unwrap();
    let e = exec(first);
    assert_eq!(
        e.meta.args,
        ["/bin/ash", "-eo", "pipefail", "-c", "cat /mnt/deps"]
    );
    assert_eq!(e.security, SecurityMode::Insecure);
    let kinds: Vec<(&str, &MountKind, bool)> = e
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), &m.kind, m.readonly))
        .collect();
    assert_eq!(kinds.len(), 6);
    assert_eq!(kinds[0], ("/", &MountKind::Bind, false));
    assert_eq!(
        kinds[1],
        (
            "/root/.cache",
            &MountKind::Cache {
                id: "/root/.cache".into(),
                sharing: Sharing::Locked
            },
            false
        )
    );
    // uid/mode: the cache is seeded from a /cache directory made with that owner and mode.
    assert_eq!(e.mounts[1].selector.as_deref(), Some("/cache"));
    let seed = node(def, &first.inputs[e.mounts[1].input.unwrap() as usize].node);
    let FileAction::Mkdir(m) = &file(seed).actions[0].action else {
        panic!()
    };
    assert_eq!((m.path.as_str(), m.mode), ("/cache", 0o700));
    let owner = m.owner.as_ref().unwrap();
    assert_eq!(
        (&owner.user, &owner.group),
        (&Some(UserOpt::Id(1000)), &Some(UserOpt::Id(0)))
    );
    assert_eq!((kinds[2].0, kinds[2].2), ("/mnt/deps", true));
    assert_eq!(e.mounts[2].selector.as_deref(), Some("/deps"));
    let MountKind::Secret(s) = kinds[3].1 else {
        panic!()
    };
    assert_eq!(
        (kinds[3].0, s.id.as_str(), s.mode, s.optional),
        ("/run/secrets/token", "token", 0o400, true)
    );
    assert_eq!(
        kinds[4],
        ("/tmp/scratch", &MountKind::Tmpfs { size: None }, false)
    );
    // A bind mount without `from` reads the build context.
    assert_eq!((kinds[5].0, kinds[5].2), ("/go.mod", true));
    assert_eq!(e.mounts[5].selector.as_deref(), Some("/go.mod"));
    let ctx = node(def, &first.inputs[e.mounts[5].input.unwrap() as usize].node);
    assert!(matches!(&ctx.op, Op::Source(s) if matches!(s.id, SourceId::Local { .. })));

    let simple = exec(node_named(def, "[stage-1 3/5] RUN <<EOF (echo one...)"));
    assert_eq!(
        simple.meta.args,
        ["/bin/ash", "-eo", "pipefail", "-c", "echo one\necho two\n"]
    );
    let script = node_named(def, "[stage-1 4/5] RUN <<EOF (#!/usr/bin/env python3...)");
    let e = exec(script);
    assert_eq!(
        e.meta.args,
        ["/bin/ash", "-eo", "pipefail", "-c", "/dev/pipes/EOF"]
    );
    let pipe = &e.mounts[1];
    assert_eq!(
        (pipe.dest.as_str(), pipe.readonly, pipe.selector.as_deref()),
        ("/dev/pipes/", true, Some("/"))
    );
    let body = node(def, &script.inputs[pipe.input.unwrap() as usize].node);
    let FileAction::Mkfile(m) = &file(body).actions[0].action else {
        panic!()
    };
    assert_eq!((m.path.as_str(), m.mode), ("/EOF", 0o755));
    let multi = exec(node_named(def, "[stage-1 5/5] RUN cat <<A <<B"));
    assert_eq!(multi.meta.args[4], "cat <<A <<B\nfirst\nA\nsecond\nB");
}

#[test]
fn no_cache_marks_every_op() {
    let mut opts = base_options();
    opts.no_cache = true;
    let src = std::fs::read(root().join("multistage/Dockerfile")).unwrap();
    let out = dray_frontend::convert::convert_source(&src, &opts, &images()).unwrap();
    let def = &out.definition;
    for n in &def.nodes {
        let m = &def.metadata[&n.digest()];
        if matches!(n.op, Op::Exec(_) | Op::File(_)) {
            assert!(m.ignore_cache, "{:?}", m.custom_name());
        }
    }
    // Metadata never changes identity.
    let plain = convert_case("multistage");
    assert_eq!(plain.definition.digests(), def.digests());
}
