use super::*;
use crate::exec::{MountKind, NetMode, Sharing};
use crate::file::{ActionInput, Copy, FileAction, Mkdir};

fn alpine() -> State {
    State::image(ImageRef::parse("alpine:3.19").unwrap())
}

fn sh(cmd: &str) -> ExecSpec {
    ExecSpec::new(["/bin/sh", "-c", cmd])
}

fn exec_of(def: &crate::Definition, digest: Digest) -> crate::ExecOp {
    let node = def
        .nodes
        .iter()
        .find(|n| n.digest() == digest)
        .expect("node in definition");
    match &node.op {
        Op::Exec(e) => e.clone(),
        other => panic!("expected exec, got {}", other.kind()),
    }
}

fn copy(src: &str, dest: &str) -> Copy {
    Copy {
        src: src.into(),
        dest: dest.into(),
        ..Copy::default()
    }
}

#[test]
fn state_values_are_not_nodes() {
    let base = alpine();
    let configured = base
        .clone()
        .with_env("A", "1")
        .with_cwd("/app")
        .with_user("nobody");
    assert_eq!(configured.digest(), base.digest());
    assert_eq!(marshal(&configured).unwrap().nodes.len(), 1);
    assert_eq!(configured.get_env("A"), Some("1"));
    assert_eq!(configured.cwd(), "/app");
    assert_eq!(configured.user(), "nobody");
    assert_eq!(base.cwd(), "/", "the original state is untouched");
    assert!(base.env().is_empty());
}

#[test]
fn exec_uses_state_values() {
    let st = alpine()
        .with_env("PATH", "/bin")
        .with_cwd("/src")
        .with_cwd("sub")
        .with_user("1000");
    let run = st.run(sh("make").network(NetMode::None).hostname("builder"));
    let def = marshal(&run.root()).unwrap();
    let exec = exec_of(&def, run.digest());
    assert_eq!(exec.meta.args, ["/bin/sh", "-c", "make"]);
    assert_eq!(exec.meta.env, ["PATH=/bin"]);
    assert_eq!(exec.meta.cwd, "/src/sub");
    assert_eq!(exec.meta.user, "1000");
    assert_eq!(exec.meta.hostname.as_deref(), Some("builder"));
    assert_eq!(exec.network, NetMode::None);
    assert_eq!(exec.mounts.len(), 1);
    assert_eq!(exec.mounts[0].dest, "/");
    assert_eq!(exec.mounts[0].output, Some(0));
    // The root state keeps the values for the next instruction.
    assert_eq!(run.root().cwd(), "/src/sub");
    assert_eq!(run.root().get_env("PATH"), Some("/bin"));
}

#[test]
fn env_order_changes_the_exec_digest() {
    let ab = alpine()
        .with_env("A", "1")
        .with_env("B", "2")
        .run(sh("env"))
        .digest();
    let ba = alpine()
        .with_env("B", "2")
        .with_env("A", "1")
        .run(sh("env"))
        .digest();
    assert_ne!(ab, ba);
    // Re-setting a key keeps its position, so only the value changes.
    let st = alpine()
        .with_env("A", "0")
        .with_env("B", "2")
        .with_env("A", "1");
    assert_eq!(
        st.env(),
        [("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(st.run(sh("env")).digest(), ab);
    assert_eq!(st.clone().without_env("A").env().len(), 1);
}

#[test]
fn any_exec_field_changes_the_digest() {
    let base = alpine();
    let reference = base.run(sh("make")).digest();
    let variants = [
        base.run(sh("make ")).digest(),
        base.clone().with_cwd("/x").run(sh("make")).digest(),
        base.clone().with_user("nobody").run(sh("make")).digest(),
        base.run(sh("make").network(NetMode::Host)).digest(),
        base.run(sh("make").security(crate::SecurityMode::Insecure))
            .digest(),
        base.run(sh("make").mount(Mount::tmpfs("/tmp", None)))
            .digest(),
        base.clone()
            .with_platform(Platform::linux("arm64"))
            .run(sh("make"))
            .digest(),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(*v, reference, "variant {i} should change the digest");
    }
    assert_eq!(
        base.run(sh("make")).digest(),
        reference,
        "and the same spec is stable"
    );
}

#[test]
fn metadata_does_not_change_digests() {
    let plain = alpine().run(sh("make")).root();
    let named = alpine()
        .named("[base 1/2] FROM alpine")
        .run(sh("make"))
        .named("[base 2/2] RUN make");
    assert_eq!(named.root().digest(), plain.digest());
    let def_plain = marshal(&plain).unwrap();
    let def_named = marshal(&named.root()).unwrap();
    assert_eq!(def_plain.digests(), def_named.digests());
    assert!(def_plain.metadata.is_empty());
    assert_eq!(def_named.metadata.len(), 2);
    assert_eq!(
        def_named.metadata[&def_named.digests()[0]].custom_name(),
        Some("[base 1/2] FROM alpine")
    );
    assert_eq!(
        def_named.metadata[&named.digest()].custom_name(),
        Some("[base 2/2] RUN make")
    );
    let ignore = named.root().with_metadata(OpMetadata {
        ignore_cache: true,
        ..OpMetadata::default()
    });
    assert_eq!(ignore.digest(), plain.digest());
}

#[test]
fn identical_runs_in_different_branches_are_one_node() {
    let base = alpine();
    // Two separately built but identical RUNs (different Arcs, different names).
    let left = base
        .run(sh("apk add gcc"))
        .named("[a 2/3] RUN apk add gcc")
        .root();
    let right = base
        .run(sh("apk add gcc"))
        .named("[b 2/3] RUN apk add gcc")
        .root();
    let left = left.file(FileChain::new().then(FileAction::Mkdir(mkdir("/left"))));
    let right = right.file(FileChain::new().then(FileAction::Mkdir(mkdir("/right"))));
    let def = marshal(&State::merge([left, right])).unwrap();
    def.validate().unwrap();
    let kinds: Vec<&str> = def.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["source", "exec", "file", "file", "merge"]);
    // The first name met wins for the shared node.
    let exec = def.digests()[1];
    assert_eq!(
        def.metadata[&exec].custom_name(),
        Some("[a 2/3] RUN apk add gcc")
    );
}

fn mkdir(path: &str) -> Mkdir {
    Mkdir {
        path: path.into(),
        mode: 0o755,
        make_parents: true,
        owner: None,
        timestamp: None,
    }
}

#[test]
fn marshal_orders_topologically_with_the_head_last() {
    let ctx = State::local("context", crate::LocalAttrs::default());
    let builder = alpine().run(sh("build")).root();
    let runtime = State::scratch().file(
        FileChain::new()
            .copy(&builder, copy("/out/app", "/app"))
            .copy(&ctx, copy("cfg", "/etc/")),
    );
    let def = marshal(&runtime).unwrap();
    def.validate().unwrap();
    let kinds: Vec<&str> = def.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["source", "source", "exec", "source", "file"]);
    let ids: Vec<String> = def
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Source(s) => Some(s.id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        [
            "scratch://",
            "docker-image://docker.io/library/alpine:3.19",
            "local://context"
        ]
    );
    // Every input is an earlier node.
    let digests = def.digests();
    for (i, node) in def.nodes.iter().enumerate() {
        for input in &node.inputs {
            let pos = digests.iter().position(|d| *d == input.node).unwrap();
            assert!(pos < i, "node {i} uses later node {pos}");
        }
    }
    assert_eq!(def.head().unwrap().node, runtime.digest());
    // Marshaling is deterministic.
    assert_eq!(marshal(&runtime).unwrap(), def);
}

#[test]
fn file_chain_wires_steps_and_dedups_inputs() {
    let ctx = State::local("context", crate::LocalAttrs::default());
    let st = alpine().with_cwd("/app").file(
        FileChain::new()
            .then(FileAction::Mkdir(mkdir("data")))
            .copy(&ctx, copy("src/", "./"))
            .copy(&ctx, copy("README", "docs/")),
    );
    let def = marshal(&st).unwrap();
    def.validate().unwrap();
    let head = def.nodes.last().unwrap();
    assert_eq!(
        head.inputs.len(),
        2,
        "the context is one input however often it is read"
    );
    let Op::File(f) = &head.op else {
        panic!("expected a file op")
    };
    let wiring: Vec<_> = f
        .actions
        .iter()
        .map(|s| (s.input, s.secondary_input, s.output))
        .collect();
    assert_eq!(
        wiring,
        [
            (ActionInput::Input(0), None, None),
            (ActionInput::Action(0), Some(ActionInput::Input(1)), None),
            (ActionInput::Action(1), Some(ActionInput::Input(1)), Some(0)),
        ]
    );
    let paths: Vec<String> = f
        .actions
        .iter()
        .map(|s| match &s.action {
            FileAction::Mkdir(m) => m.path.clone(),
            FileAction::Copy(c) => format!("{} -> {}", c.src, c.dest),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        paths,
        ["/app/data", "/src/ -> /app/", "/README -> /app/docs/"]
    );
    assert_eq!(
        alpine().file(FileChain::new()).digest(),
        alpine().digest(),
        "empty chain is a no-op"
    );
}

#[test]
fn exec_mounts_get_inputs_and_outputs() {
    let ctx = State::local("context", crate::LocalAttrs::default());
    let deps = alpine().run(sh("fetch")).root();
    let run = alpine().with_cwd("/w").run(
        sh("build")
            .mount(Mount::bind("src", ctx.clone()).readonly().selector("/app"))
            .mount(Mount::cache("/root/.cache", "go", Sharing::Locked))
            .mount(Mount::bind("/out", deps.clone()))
            .mount(Mount::bind("/out2", State::scratch())),
    );
    let def = marshal(&run.root()).unwrap();
    def.validate().unwrap();
    let exec = exec_of(&def, run.digest());
    let summary: Vec<_> = exec
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly))
        .collect();
    assert_eq!(
        summary,
        [
            ("/", Some(0), Some(0), false),
            ("/w/src", Some(1), None, true),
            ("/root/.cache", None, None, false),
            ("/out", Some(2), Some(1), false),
            ("/out2", Some(3), Some(2), false),
        ]
    );
    assert!(
        matches!(&exec.mounts[2].kind, MountKind::Cache { id, sharing: Sharing::Locked } if id == "go")
    );
    assert_eq!(exec.num_outputs(), 3);

    let out = run.mount("/out").expect("writable bind mount is an output");
    assert_eq!(out.output_index(), 1);
    assert_eq!(out.digest(), run.digest());
    assert!(
        run.mount("/w/src").is_none(),
        "read-only mounts are not outputs"
    );
    assert!(
        run.mount("src").is_none(),
        "relative lookups resolve against cwd (to /w/src)"
    );

    // An exec output can feed a later node...
    let next = State::scratch().file(FileChain::new().copy(&out, copy("/bin", "/bin")));
    let def = marshal(&next).unwrap();
    def.validate().unwrap();
    assert_eq!(def.nodes.last().unwrap().inputs[1].output, 1);
    // ...but cannot be the head itself.
    assert_eq!(
        marshal(&out),
        Err(MarshalError::HeadNotFirstOutput {
            digest: run.digest(),
            output: 1
        })
    );
}

#[test]
fn merge_of_zero_or_one_state_adds_no_node() {
    assert_eq!(State::merge([]).digest(), State::scratch().digest());
    let a = alpine().with_env("K", "V");
    let one = State::merge([a.clone()]);
    assert_eq!(one.digest(), a.digest());
    assert_eq!(one.get_env("K"), Some("V"));
    let two = State::merge([a.clone(), State::scratch()]);
    assert_eq!(
        two.get_env("K"),
        Some("V"),
        "state values come from the first input"
    );
    assert_ne!(
        two.digest(),
        State::merge([State::scratch(), a]).digest(),
        "order matters"
    );
}

#[test]
fn platform_is_inherited_and_part_of_the_digest() {
    let arm = Platform::linux("arm64");
    let img = State::source(
        crate::SourceOp::image(ImageRef::parse("alpine").unwrap()),
        Some(arm.clone()),
    );
    assert_eq!(img.platform(), Some(&arm));
    let run = img.run(sh("uname -m")).root();
    let def = marshal(&run).unwrap();
    assert!(def.nodes.iter().all(|n| n.platform.as_ref() == Some(&arm)));
    assert_ne!(img.digest(), alpine().digest());
}

#[test]
fn debug_output_does_not_walk_the_graph() {
    let mut st = alpine();
    for i in 0..50 {
        st = st.run(sh(&format!("step {i}"))).root();
    }
    let text = format!("{st:?}");
    assert!(text.contains("op: \"exec\""), "{text}");
    assert!(text.len() < 600, "Debug printed {} bytes", text.len());
}

#[test]
fn a_writable_bind_mount_without_output_is_writable_and_no_output() {
    let run = alpine().run(sh("build").mount(Mount::bind("/ctx", alpine()).no_output()));
    let def = marshal(&run.root()).unwrap();
    def.validate().unwrap();
    let exec = exec_of(&def, run.digest());
    let ctx = &exec.mounts[1];
    assert_eq!(
        (ctx.dest.as_str(), ctx.readonly, ctx.output),
        ("/ctx", false, None)
    );
    assert_eq!(exec.num_outputs(), 1);
    assert!(run.mount("/ctx").is_none());
}
