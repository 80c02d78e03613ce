//! Printers for `dray debug llb`: stable JSON (for snapshot tests) and Graphviz dot.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::definition::Definition;
use crate::encoding::{SCHEMA_VERSION, sorted};
use crate::file::FileAction;
use crate::op::{Node, Op};

/// Longest label line in dot output before it is cut with `…`.
const LABEL_MAX: usize = 60;

impl Definition {
    /// Pretty JSON with sorted keys: `{"head", "nodes": [{"digest", "inputs", "metadata", "op",
    /// "platform"}], "schema"}`. Stable across runs and platforms, so tests can snapshot it.
    pub fn to_json_pretty(&self) -> String {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|node| {
                let digest = node.digest();
                // Cannot fail: see `Node::canonical_bytes`.
                let mut value = serde_json::to_value(node).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("digest".into(), json!(digest));
                    map.insert("metadata".into(), json!(self.metadata.get(&digest)));
                }
                value
            })
            .collect();
        let doc = json!({
            "schema": SCHEMA_VERSION,
            "head": self.head(),
            "nodes": nodes,
        });
        let mut out = serde_json::to_string_pretty(&sorted(doc)).unwrap_or_default();
        out.push('\n');
        out
    }

    /// A Graphviz digraph: one box per node labelled with its short digest and either its
    /// progress name or a summary of the op; one edge per input, from producer to consumer,
    /// labelled with the output index when it is not 0.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph llb {\n  node [shape=box, fontname=monospace];\n");
        for node in &self.nodes {
            let digest = node.digest();
            let title = match self.metadata.get(&digest).and_then(|m| m.custom_name()) {
                Some(name) => name.to_owned(),
                None => summary(node),
            };
            let label = format!("{}\\n{}", digest.short(), escape(&truncate(&title)));
            let _ = writeln!(out, "  \"{digest}\" [label=\"{label}\"];");
        }
        for node in &self.nodes {
            let digest = node.digest();
            for input in &node.inputs {
                let _ = match input.output {
                    0 => writeln!(out, "  \"{}\" -> \"{digest}\";", input.node),
                    o => writeln!(out, "  \"{}\" -> \"{digest}\" [label=\"{o}\"];", input.node),
                };
            }
        }
        out.push_str("}\n");
        out
    }
}

/// A one-line description of what a node does.
fn summary(node: &Node) -> String {
    match &node.op {
        Op::Source(s) => s.id.to_string(),
        Op::Exec(e) => format!("exec {}", e.meta.args.join(" ")),
        Op::File(f) => {
            let parts: Vec<String> = f
                .actions
                .iter()
                .map(|s| match &s.action {
                    FileAction::Copy(c) => format!("copy {} {}", c.src, c.dest),
                    FileAction::Mkdir(m) => format!("mkdir {}", m.path),
                    FileAction::Mkfile(m) => format!("mkfile {}", m.path),
                    FileAction::Rm(r) => format!("rm {}", r.path),
                    FileAction::Symlink(l) => format!("symlink {} -> {}", l.newpath, l.oldpath),
                })
                .collect();
            parts.join("; ")
        }
        Op::Merge(_) => format!("merge of {}", node.inputs.len()),
    }
}

fn truncate(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() <= LABEL_MAX && line.len() == s.len() {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(LABEL_MAX - 1).collect();
    cut.push('…');
    cut
}

/// Escapes a string for a double-quoted dot label.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use crate::{Copy, Definition, ExecSpec, FileChain, ImageRef, State, marshal};

    fn sample() -> Definition {
        let ctx = State::local("context", crate::LocalAttrs::default());
        let base = State::image(ImageRef::parse("alpine").unwrap()).with_env("A", "1");
        let built = base
            .run(ExecSpec::new(["sh", "-c", "echo \"hi\" > /x"]))
            .named("[build 2/3] RUN echo \"hi\" > /x")
            .root();
        let head = built.file(FileChain::new().copy(
            &ctx,
            Copy {
                src: "app".into(),
                dest: "/app/".into(),
                ..Copy::default()
            },
        ));
        marshal(&head).unwrap()
    }

    /// Replaces each node digest with `<n>` (its position), so the snapshot shows structure and
    /// survives encoding changes (the golden test pins the digests themselves).
    fn redact(def: &Definition, text: &str) -> String {
        let mut out = text.to_owned();
        for (i, d) in def.digests().iter().enumerate() {
            out = out
                .replace(&d.to_string(), &format!("<{i}>"))
                .replace(&d.short(), &format!("<{i}>"));
        }
        out
    }

    #[test]
    fn dot_output() {
        let def = sample();
        assert_eq!(
            redact(&def, &def.to_dot()),
            r#"digraph llb {
  node [shape=box, fontname=monospace];
  "<0>" [label="<0>\ndocker-image://docker.io/library/alpine:latest"];
  "<1>" [label="<1>\n[build 2/3] RUN echo \"hi\" > /x"];
  "<2>" [label="<2>\nlocal://context"];
  "<3>" [label="<3>\ncopy /app /app/"];
  "<0>" -> "<1>";
  "<1>" -> "<3>";
  "<2>" -> "<3>";
}
"#
        );
    }

    #[test]
    fn json_output_is_sorted_and_complete() {
        let def = sample();
        let text = redact(&def, &def.to_json_pretty());
        let expected = r#"{
  "head": {
    "node": "<3>",
    "output": 0
  },
  "nodes": [
    {
      "digest": "<0>",
      "inputs": [],
      "metadata": null,
      "op": {
        "source": {
          "attrs": "none",
          "id": "docker-image://docker.io/library/alpine:latest"
        }
      },
      "platform": null
    },
    {
      "digest": "<1>",
      "inputs": [
        {
          "node": "<0>",
          "output": 0
        }
      ],
      "metadata": {
        "description": {
          "llb.customname": "[build 2/3] RUN echo \"hi\" > /x"
        },
        "ignore_cache": false,
        "source_location": null
      },
      "op": {
        "exec": {
          "meta": {
            "args": [
              "sh",
              "-c",
              "echo \"hi\" > /x"
            ],
            "cwd": "/",
            "env": [
              "A=1"
            ],
            "hostname": null,
            "proxy_env": [],
            "user": ""
          },
          "mounts": [
            {
              "dest": "/",
              "input": 0,
              "kind": "bind",
              "output": 0,
              "readonly": false,
              "selector": null
            }
          ],
          "network": "sandbox",
          "security": "sandbox"
        }
      },
      "platform": null
    },
    {
      "digest": "<2>",
      "inputs": [],
      "metadata": null,
      "op": {
        "source": {
          "attrs": {
            "local": {
              "exclude_patterns": [],
              "follow_paths": [],
              "include_patterns": []
            }
          },
          "id": "local://context"
        }
      },
      "platform": null
    },
    {
      "digest": "<3>",
      "inputs": [
        {
          "node": "<1>",
          "output": 0
        },
        {
          "node": "<2>",
          "output": 0
        }
      ],
      "metadata": null,
      "op": {
        "file": {
          "actions": [
            {
              "action": {
                "copy": {
                  "allow_empty_wildcard": false,
                  "allow_wildcard": false,
                  "always_replace_existing": false,
                  "attempt_unpack": false,
                  "create_dest_path": false,
                  "dest": "/app/",
                  "dir_copy_contents": false,
                  "exclude_patterns": [],
                  "follow_symlinks": false,
                  "include_patterns": [],
                  "mode": null,
                  "owner": null,
                  "parents": false,
                  "src": "/app",
                  "timestamp": null
                }
              },
              "input": {
                "input": 0
              },
              "output": 0,
              "secondary_input": {
                "input": 1
              }
            }
          ]
        }
      },
      "platform": null
    }
  ],
  "schema": "dray-llb/v1"
}
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn long_labels_are_cut() {
        let cmd = "x".repeat(200);
        let head = State::scratch().run(ExecSpec::new([cmd.as_str()])).root();
        let dot = marshal(&head).unwrap().to_dot();
        let label_line = dot.lines().find(|l| l.contains("exec ")).unwrap();
        assert!(
            label_line.contains(&format!("exec {}…", "x".repeat(54))),
            "{label_line}"
        );
    }
}
