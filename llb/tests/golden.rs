//! Golden node digests: the canonical encoding must not drift.
//!
//! A node digest is the identity of a build step. The solver derives every cache key from node
//! digests, so **changing any digest pinned here re-keys every cache** of every user: all builds
//! start cold. That is sometimes right (a new field, a fixed encoding bug), but it must be
//! deliberate:
//!
//! 1. bump `SCHEMA_VERSION` in `llb/src/encoding.rs` and update the table there;
//! 2. replace `testdata/keys/llb-golden.toml` with the content this test prints on failure;
//! 3. say so in the commit message.
//!
//! The nodes are built field by field (not through the `State` builder) so that this test pins
//! the encoding alone. Inputs chain the golden nodes together, so the digests are Merkle.

use std::collections::BTreeMap;

use dray_llb::encoding::SCHEMA_VERSION;
use dray_llb::{
    ActionInput, Chown, Copy, Digest, ExecMeta, ExecMount, ExecOp, FileAction, FileOp, FileStep,
    HttpAttrs, ImageRef, Input, LocalAttrs, MergeOp, Mkdir, Mkfile, Mode, MountKind, NetMode, Node,
    Op, Platform, Rm, SecretMount, SecurityMode, Sharing, SourceOp, Symlink, UserOpt,
};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/keys/llb-golden.toml"
);

fn source(op: SourceOp) -> Node {
    Node {
        inputs: vec![],
        op: Op::Source(op),
        platform: None,
    }
}

fn input(node: &Node, output: u32) -> Input {
    Input {
        node: node.digest(),
        output,
    }
}

/// The representative nodes, by name, in dependency order.
fn cases() -> Vec<(&'static str, Node)> {
    let scratch = source(SourceOp::scratch());
    let alpine = source(SourceOp::image(ImageRef::parse("alpine:3.19").unwrap()));
    let context = source(SourceOp::local(
        "context",
        LocalAttrs {
            include_patterns: vec![],
            exclude_patterns: vec!["target".into(), "**/*.log".into(), "!keep.log".into()],
            follow_paths: vec!["src".into(), "Cargo.toml".into()],
        },
    ));
    let download = source(SourceOp::http(
        "https://example.com/tool-1.0.tar.gz",
        HttpAttrs {
            checksum: Some(Digest::of("tool-1.0.tar.gz")),
            filename: Some("tool.tar.gz".into()),
            mode: Some(0o644),
        },
    ));
    let layout = Node {
        platform: Some("linux/arm/v7".parse::<Platform>().unwrap()),
        ..source(SourceOp::oci_layout("/srv/layouts/busybox", "1.36"))
    };
    let run = Node {
        inputs: vec![input(&alpine, 0), input(&context, 0)],
        op: Op::Exec(ExecOp {
            meta: ExecMeta {
                args: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "cargo build --release".into(),
                ],
                env: vec![
                    "PATH=/usr/local/bin:/usr/bin:/bin".into(),
                    "CARGO_HOME=/cargo".into(),
                ],
                cwd: "/src".into(),
                user: "builder:1000".into(),
                hostname: None,
                proxy_env: Vec::new(),
            },
            mounts: vec![
                mount(Some(0), "/", None, false, Some(0), MountKind::Bind),
                mount(Some(1), "/src", Some("/"), true, None, MountKind::Bind),
                mount(
                    None,
                    "/cargo/registry",
                    None,
                    false,
                    None,
                    MountKind::Cache {
                        id: "cargo-registry".into(),
                        sharing: Sharing::Locked,
                    },
                ),
                mount(
                    None,
                    "/run/secrets/token",
                    None,
                    true,
                    None,
                    MountKind::Secret(SecretMount {
                        id: "token".into(),
                        uid: 0,
                        gid: 0,
                        mode: 0o400,
                        optional: false,
                    }),
                ),
            ],
            network: NetMode::None,
            security: SecurityMode::Sandbox,
        }),
        platform: Some(Platform::linux("amd64")),
    };
    let run_outputs = Node {
        inputs: vec![input(&layout, 0), input(&scratch, 0)],
        op: Op::Exec(ExecOp {
            meta: ExecMeta {
                args: vec!["make".into(), "install".into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                hostname: Some("build".into()),
                proxy_env: Vec::new(),
            },
            mounts: vec![
                mount(Some(0), "/", None, false, Some(0), MountKind::Bind),
                mount(Some(1), "/out", None, false, Some(1), MountKind::Bind),
                mount(
                    None,
                    "/tmp",
                    None,
                    false,
                    None,
                    MountKind::Tmpfs {
                        size: Some(1 << 26),
                    },
                ),
                mount(
                    None,
                    "/run/ssh",
                    None,
                    true,
                    None,
                    MountKind::Ssh(SecretMount {
                        id: "default".into(),
                        uid: 1000,
                        gid: 1000,
                        mode: 0o600,
                        optional: true,
                    }),
                ),
            ],
            network: NetMode::Host,
            security: SecurityMode::Insecure,
        }),
        platform: Some("linux/arm/v7".parse().unwrap()),
    };
    let files = Node {
        inputs: vec![input(&scratch, 0), input(&run, 0), input(&download, 0)],
        op: Op::File(FileOp {
            actions: vec![
                step(
                    ActionInput::Input(0),
                    None,
                    None,
                    FileAction::Mkdir(Mkdir {
                        path: "/app".into(),
                        mode: 0o755,
                        make_parents: true,
                        owner: Some(Chown {
                            user: Some(UserOpt::Id(1000)),
                            group: None,
                        }),
                        timestamp: Some(0),
                    }),
                ),
                step(
                    ActionInput::Action(0),
                    Some(ActionInput::Input(1)),
                    None,
                    FileAction::Copy(Copy {
                        src: "/src/target/release/app".into(),
                        dest: "/app/".into(),
                        owner: Some(Chown {
                            user: Some(UserOpt::Name("app".into())),
                            group: Some(UserOpt::Name("staff".into())),
                        }),
                        mode: Some(Mode::Symbolic("u+x,go-w".into())),
                        follow_symlinks: true,
                        dir_copy_contents: true,
                        attempt_unpack: false,
                        create_dest_path: true,
                        allow_wildcard: true,
                        allow_empty_wildcard: false,
                        include_patterns: vec!["*.so".into()],
                        exclude_patterns: vec!["*.d".into()],
                        parents: false,
                        always_replace_existing: false,
                        timestamp: Some(1_700_000_000),
                    }),
                ),
                step(
                    ActionInput::Action(1),
                    Some(ActionInput::Input(2)),
                    None,
                    FileAction::Copy(Copy {
                        src: "/tool.tar.gz".into(),
                        dest: "/opt/".into(),
                        mode: Some(Mode::Octal(0o755)),
                        attempt_unpack: true,
                        ..Copy::default()
                    }),
                ),
                step(
                    ActionInput::Action(2),
                    None,
                    None,
                    FileAction::Mkfile(Mkfile {
                        path: "/app/config.toml".into(),
                        mode: 0o644,
                        data: "name = \"app\"\n\tunicode = \"é\"\n".into(),
                        owner: None,
                        timestamp: None,
                    }),
                ),
                step(
                    ActionInput::Action(3),
                    None,
                    None,
                    FileAction::Rm(Rm {
                        path: "/app/*.tmp".into(),
                        allow_not_found: true,
                        allow_wildcard: true,
                    }),
                ),
                step(
                    ActionInput::Action(4),
                    None,
                    Some(0),
                    FileAction::Symlink(Symlink {
                        oldpath: "../app/app".into(),
                        newpath: "/usr/bin/app".into(),
                        owner: None,
                        timestamp: None,
                    }),
                ),
            ],
        }),
        platform: None,
    };
    let merge = Node {
        inputs: vec![input(&alpine, 0), input(&files, 0), input(&run_outputs, 1)],
        op: Op::Merge(MergeOp {}),
        platform: None,
    };
    vec![
        ("source-scratch", scratch),
        ("source-image", alpine),
        ("source-local", context),
        ("source-http", download),
        ("source-oci-layout", layout),
        ("exec-cache-secret", run),
        ("exec-outputs-tmpfs-ssh", run_outputs),
        ("file-all-actions", files),
        ("merge", merge),
    ]
}

fn mount(
    input: Option<u32>,
    dest: &str,
    selector: Option<&str>,
    readonly: bool,
    output: Option<u32>,
    kind: MountKind,
) -> ExecMount {
    ExecMount {
        input,
        dest: dest.into(),
        selector: selector.map(Into::into),
        readonly,
        output,
        kind,
    }
}

fn step(
    input: ActionInput,
    secondary_input: Option<ActionInput>,
    output: Option<u32>,
    action: FileAction,
) -> FileStep {
    FileStep {
        input,
        secondary_input,
        output,
        action,
    }
}

/// The golden file as it should be for the current encoding.
fn render(cases: &[(&str, Node)]) -> String {
    let mut out = String::from(
        "# Golden llb node digests, checked by llb/tests/golden.rs.\n\
         # Changing any digest here re-keys every cache: bump SCHEMA_VERSION in\n\
         # llb/src/encoding.rs and read the notes in llb/tests/golden.rs first.\n\n",
    );
    out.push_str(&format!("schema = \"{SCHEMA_VERSION}\"\n"));
    for (name, node) in cases {
        let canonical = String::from_utf8(node.canonical_bytes()).unwrap();
        out.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\ndigest = \"{}\"\ncanonical = '''\n{canonical}'''\n",
            node.digest()
        ));
    }
    out
}

#[derive(serde::Deserialize)]
struct GoldenFile {
    schema: String,
    node: Vec<GoldenNode>,
}

#[derive(serde::Deserialize)]
struct GoldenNode {
    name: String,
    digest: String,
    canonical: String,
}

#[test]
fn node_digests_match_the_golden_file() {
    let cases = cases();
    let expected = render(&cases);
    let text = std::fs::read_to_string(GOLDEN)
        .unwrap_or_else(|e| panic!("cannot read {GOLDEN}: {e}\nIt should contain:\n\n{expected}"));
    let golden: GoldenFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{GOLDEN}: {e}"));
    let pinned: BTreeMap<&str, &GoldenNode> =
        golden.node.iter().map(|n| (n.name.as_str(), n)).collect();

    let mut problems = Vec::new();
    if golden.schema != SCHEMA_VERSION {
        problems.push(format!(
            "schema: golden {:?}, code {SCHEMA_VERSION:?}",
            golden.schema
        ));
    }
    if pinned.len() != cases.len() || cases.iter().any(|(name, _)| !pinned.contains_key(name)) {
        problems.push("the set of golden nodes differs from the cases in this test".to_owned());
    }
    for (name, node) in &cases {
        let Some(pin) = pinned.get(name) else {
            continue;
        };
        let canonical = String::from_utf8(node.canonical_bytes()).unwrap();
        if pin.canonical.trim_end() != canonical {
            problems.push(format!(
                "{name}: canonical encoding changed\n  golden: {}\n  now:    {canonical}",
                pin.canonical.trim_end()
            ));
        }
        if pin.digest != node.digest().to_string() {
            problems.push(format!(
                "{name}: digest {} is now {}",
                pin.digest,
                node.digest()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the llb encoding changed; this re-keys every cache (see the notes at the top of \
         llb/tests/golden.rs).\n\n{}\n\nIf intended, replace {GOLDEN} with:\n\n{expected}",
        problems.join("\n")
    );
}

#[test]
fn golden_nodes_are_distinct_and_form_a_valid_definition() {
    let cases = cases();
    let mut digests: Vec<Digest> = cases.iter().map(|(_, n)| n.digest()).collect();
    digests.sort();
    digests.dedup();
    assert_eq!(
        digests.len(),
        cases.len(),
        "every golden node has its own digest"
    );

    let def = dray_llb::Definition {
        nodes: cases.into_iter().map(|(_, n)| n).collect(),
        metadata: BTreeMap::new(),
    };
    def.validate().unwrap();
}

#[test]
fn digest_is_sha256_of_the_canonical_bytes() {
    for (name, node) in cases() {
        let canonical = node.canonical_bytes();
        assert_eq!(node.digest(), Digest::of(&canonical), "{name}");
        let text = String::from_utf8(canonical).unwrap();
        assert!(
            text.ends_with(&format!("\"schema\":\"{SCHEMA_VERSION}\"}}")),
            "{name}: {text}"
        );
        assert!(!text.contains('\n'), "{name}: canonical form is one line");
    }
}
