//! Why did a step miss? (`build --explain-cache`, the compact reason in `--progress plain`, and
//! `cache diff`.)
//!
//! A missed step is compared with the **closest earlier record of the same step**: in the
//! newest earlier build of the same Dockerfile, the step with the same progress name, else the
//! same stage and position (`[build 2/5]`), else the same `file:line`; failing that, a cache
//! record with the same name. The first component that differs is reported, in this order:
//!
//! | component | reported as |
//! |---|---|
//! | the base image's manifest digest | `base image digest changed: sha256:… -> sha256:…` |
//! | the platform | `platform changed: linux/amd64 -> linux/arm64` |
//! | the instruction text | ``instruction changed: `COPY a /x` -> `COPY b /x` `` |
//! | an ENV or ARG the instruction uses (or a RUN's environment) | `ARG VERSION changed: "1" -> "2"` |
//! | only the file actions' timestamps | `SOURCE_DATE_EPOCH changed: 1700000000 -> 1700000001` |
//! | any other op field | `op.actions.0.mode: … -> …` (from [`dray_solver::explain`]) |
//! | an input's key | `input [2/3] COPY a /a changed: <its own reason>` |
//! | a context file a COPY reads | `context file /b.txt: content changed` / `mode changed (644 -> 755)` / `ownership changed (0:0 -> 1000:1000)` / `was added` / `was removed` |
//! | nothing earlier | `no earlier record` |

use std::collections::{BTreeMap, BTreeSet};

use dray_cache::{BuildRecord, BuildStep, StepStatus, Store};
use dray_solver::{Preimage, ResolvedDep};
use serde_json::Value;

use crate::commands::record::{FileLine, parse_files};

/// How many earlier builds are searched for the same step.
const EARLIER_BUILDS: usize = 20;

/// Fills `reason` on every missed step of `build`. `files` is this build's context file list.
pub(crate) fn explain_build(store: &Store, build: &mut BuildRecord, files: Option<&[u8]>) {
    let earlier = store
        .earlier_steps(&build.dockerfile, build.started, EARLIER_BUILDS)
        .unwrap_or_default();
    let earlier: Vec<(BuildRecord, Vec<BuildStep>)> = earlier
        .into_iter()
        .filter(|(b, _)| b.id != build.id)
        .collect();
    let snapshot = build.clone();
    for i in 0..build.steps.len() {
        let step = &build.steps[i];
        if step.status != StepStatus::Miss || step.kind.starts_with("source.") {
            continue;
        }
        let reasons = explain_step(store, &snapshot, step, &earlier, files, &build.steps[..i]);
        build.steps[i].reason = reasons.into_iter().next();
    }
}

/// The reasons (most important first) `step` of `build` missed.
fn explain_step(
    store: &Store,
    build: &BuildRecord,
    step: &BuildStep,
    earlier: &[(BuildRecord, Vec<BuildStep>)],
    files: Option<&[u8]>,
    explained: &[BuildStep],
) -> Vec<String> {
    let Some(new) = step.preimage.as_deref().and_then(parse) else {
        return vec!["its key was not recorded".to_owned()];
    };
    let found = find_earlier(step, earlier);
    let (old_build, old_step, old) = match found {
        Some((b, s)) => match s.preimage.as_deref().and_then(parse) {
            Some(p) => (Some(b), Some(s), p),
            None => return vec!["no earlier record".to_owned()],
        },
        None => match record_by_name(store, &step.name, &new.key()) {
            Some(p) => (None, None, p),
            None => return vec!["no earlier record".to_owned()],
        },
    };
    let cx = Compare {
        store,
        old_build,
        new_build: build,
        old_step,
        new_step: step,
        files,
        explained,
    };
    cx.compare(&old, &new)
}

struct Compare<'a> {
    store: &'a Store,
    old_build: Option<&'a BuildRecord>,
    new_build: &'a BuildRecord,
    old_step: Option<&'a BuildStep>,
    new_step: &'a BuildStep,
    files: Option<&'a [u8]>,
    explained: &'a [BuildStep],
}

impl Compare<'_> {
    fn compare(&self, old: &Preimage, new: &Preimage) -> Vec<String> {
        if old.key() == new.key() {
            return vec![
                "an earlier build had the same key, but its record has since been pruned"
                    .to_owned(),
            ];
        }
        let mut out = Vec::new();
        if old.op != new.op {
            out.extend(op_reasons(&old.op, &new.op));
            if out.is_empty() {
                let (a, b) = (
                    self.old_step.and_then(|s| s.instruction.clone()),
                    self.new_step.instruction.clone(),
                );
                if let (Some(a), Some(b)) = (&a, &b)
                    && squash(a) != squash(b)
                {
                    out.push(format!(
                        "instruction changed: `{}` -> `{}`",
                        squash(a),
                        squash(b)
                    ));
                }
            }
            if out.is_empty() {
                out.extend(self.var_reasons(&old.op, &new.op));
            }
            if out.is_empty() {
                out.extend(epoch_reason(&old.op, &new.op));
            }
            if out.is_empty() {
                out.extend(
                    dray_solver::explain(old, new)
                        .into_iter()
                        .filter(|l| l.starts_with("op")),
                );
            }
        }
        if old.deps.len() != new.deps.len() {
            out.push(format!(
                "the number of inputs changed ({} -> {})",
                old.deps.len(),
                new.deps.len()
            ));
        }
        for (a, b) in old.deps.iter().zip(&new.deps) {
            match (a, b) {
                (ResolvedDep::Key { key: ka, .. }, ResolvedDep::Key { key: kb, .. })
                    if ka != kb =>
                {
                    out.push(self.input_reason(ka, kb));
                }
                (
                    ResolvedDep::Content {
                        digest: da,
                        selectors: sa,
                    },
                    ResolvedDep::Content {
                        digest: db,
                        selectors: sb,
                    },
                ) if da != db => {
                    if sa != sb {
                        out.push(format!("copied paths changed: {sa:?} -> {sb:?}"));
                    } else {
                        out.push(self.content_reason(da, sb));
                    }
                }
                _ => {}
            }
        }
        if out.is_empty() {
            out.extend(dray_solver::explain(old, new));
        }
        if out.is_empty() {
            out.push("its key changed".to_owned());
        }
        out
    }

    /// An input's key changed: name it, with its own reason when it was explained.
    fn input_reason(&self, old: &dray_llb::Digest, new: &dray_llb::Digest) -> String {
        let input = self.explained.iter().find(|s| s.key.as_ref() == Some(new));
        let name = input.map_or_else(|| new.short().to_string(), |s| s.name.clone());
        if let Some(s) = input
            && s.kind == "source.image"
        {
            let old_pre = self
                .store
                .step_with_key(old)
                .ok()
                .flatten()
                .and_then(|s| s.preimage)
                .or_else(|| {
                    self.store
                        .cache_record(old)
                        .ok()
                        .flatten()
                        .map(|r| r.preimage)
                })
                .and_then(|p| parse(&p));
            let new_pre = s.preimage.as_deref().and_then(parse);
            if let (Some(o), Some(n)) = (old_pre, new_pre) {
                let why = op_reasons(&o.op, &n.op);
                if let Some(first) = why.into_iter().next() {
                    return format!("{first} ({name})");
                }
            }
            return format!("base image changed ({name})");
        }
        match input.and_then(|s| s.reason.as_deref()) {
            Some(r) => format!("input {name} changed: {r}"),
            None => format!("input {name} changed"),
        }
    }

    /// A content dep changed: which context file, and how.
    fn content_reason(&self, old: &dray_llb::Digest, selectors: &[String]) -> String {
        let shown = selectors.join(", ");
        if !self.new_step.kind.is_empty()
            && let Some(new_files) = self.files
        {
            let old_files = self
                .old_step
                .and_then(|s| s.files)
                .and_then(|d| self.store.context_files(&d).ok().flatten())
                .or_else(|| self.store.files_for_content(old).ok().flatten());
            if let Some(old_files) = old_files {
                let (a, b) = (parse_files(&old_files), parse_files(new_files));
                if let Some(r) = file_difference(&a, &b, selectors) {
                    return r;
                }
            }
        }
        format!("the content of {shown} changed")
    }

    /// Which ENV/ARG the op's change comes from.
    fn var_reasons(&self, old_op: &Value, new_op: &Value) -> Vec<String> {
        let Some(old_build) = self.old_build else {
            return Vec::new();
        };
        let stage = stage_label(&self.new_step.name);
        let old_vars = vars(&old_build.info, stage.as_deref());
        let new_vars = vars(&self.new_build.info, stage.as_deref());
        let mut names: Vec<String> = self
            .new_step
            .instruction
            .as_deref()
            .map(referenced_vars)
            .unwrap_or_default();
        // A RUN's environment: every variable whose value differs.
        let env = |op: &Value| -> BTreeMap<String, String> {
            op["meta"]["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str()?.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        let (ea, eb) = (env(old_op), env(new_op));
        for k in ea.keys().chain(eb.keys()) {
            if ea.get(k) != eb.get(k) && !names.contains(k) {
                names.push(k.clone());
            }
        }
        let mut out = Vec::new();
        for name in names {
            let (a, b) = (old_vars.get(&name), new_vars.get(&name));
            if a.map(|v| &v.1) != b.map(|v| &v.1) {
                let kind = b.or(a).map_or("ARG", |v| v.0);
                let show = |v: Option<&(&str, Option<String>)>| match v.and_then(|v| v.1.clone()) {
                    Some(s) => format!("{s:?}"),
                    None => "(unset)".to_owned(),
                };
                out.push(format!("{kind} {name} changed: {} -> {}", show(a), show(b)));
            }
        }
        out
    }
}

/// Reasons that can be read off the op object alone: base image digest and platform.
fn op_reasons(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if old["manifest"] != new["manifest"] && new["manifest"].is_string() {
        out.push(format!(
            "base image digest changed: {} -> {}",
            old["manifest"].as_str().unwrap_or("none"),
            new["manifest"].as_str().unwrap_or("none")
        ));
    }
    if old["platform"] != new["platform"] {
        out.push(format!(
            "platform changed: {} -> {}",
            platform(&old["platform"]),
            platform(&new["platform"])
        ));
    }
    out
}

/// `SOURCE_DATE_EPOCH` reaches an op as the `timestamp` of its file actions (the mtime COPY,
/// ADD, MKDIR and WORKDIR give what they create). When those values are all that differs, the
/// op changed because the epoch did; any other difference is left to the later comparisons.
fn epoch_reason(old: &Value, new: &Value) -> Option<String> {
    let (old_times, new_times) = (timestamps(old), timestamps(new));
    if old_times == new_times || without_timestamps(old) != without_timestamps(new) {
        return None;
    }
    let show = |times: &BTreeSet<Option<i64>>| {
        let shown: Vec<String> = times
            .iter()
            .map(|t| t.map_or_else(|| "(unset)".to_owned(), |t| t.to_string()))
            .collect();
        shown.join(", ")
    };
    Some(format!(
        "SOURCE_DATE_EPOCH changed: {} -> {}",
        show(&old_times),
        show(&new_times)
    ))
}

/// Every `timestamp` field's value (`None` for null) anywhere in `op`.
fn timestamps(op: &Value) -> BTreeSet<Option<i64>> {
    fn walk(v: &Value, out: &mut BTreeSet<Option<i64>>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "timestamp" {
                        out.insert(v.as_i64());
                    } else {
                        walk(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(op, &mut out);
    out
}

/// `op` with every `timestamp` field removed.
fn without_timestamps(op: &Value) -> Value {
    match op {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "timestamp")
                .map(|(k, v)| (k.clone(), without_timestamps(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_timestamps).collect()),
        other => other.clone(),
    }
}

fn platform(v: &Value) -> String {
    let part = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut s = format!("{}/{}", part("os"), part("architecture"));
    if !part("variant").is_empty() {
        s.push('/');
        s.push_str(&part("variant"));
    }
    if s == "/" { v.to_string() } else { s }
}

/// The first file (by path) under `selectors` that differs between two lists.
fn file_difference(
    old: &BTreeMap<String, FileLine>,
    new: &BTreeMap<String, FileLine>,
    selectors: &[String],
) -> Option<String> {
    let selected = |p: &str| {
        selectors.iter().any(|s| {
            let s = s.split(['*', '?', '[']).next().unwrap_or_default();
            let s = s.trim_end_matches('/');
            s.is_empty() || p == s || p.starts_with(&format!("{s}/"))
        })
    };
    let mut owner_only = None;
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for p in paths.into_iter().filter(|p| selected(p)) {
        match (old.get(p), new.get(p)) {
            (Some(_), None) => return Some(format!("context file {p} was removed")),
            (None, Some(_)) => return Some(format!("context file {p} was added")),
            (Some(a), Some(b)) => {
                if a.kind != b.kind {
                    return Some(format!(
                        "context file {p} changed from {} to {}",
                        a.kind, b.kind
                    ));
                }
                let content = a.size != b.size || (a.mode == b.mode && a.digest != b.digest);
                if a.mode != b.mode {
                    let also = if content { " and its content" } else { "" };
                    return Some(format!(
                        "context file {p}: mode changed ({} -> {}){also}",
                        a.mode, b.mode
                    ));
                }
                if content {
                    return Some(format!("context file {p}: content changed"));
                }
                if a.owner != b.owner && owner_only.is_none() {
                    owner_only = Some(format!(
                        "context file {p}: ownership changed ({} -> {})",
                        a.owner, b.owner
                    ));
                }
            }
            (None, None) => {}
        }
    }
    owner_only
}

/// The closest earlier step (see the module docs).
fn find_earlier<'a>(
    step: &BuildStep,
    earlier: &'a [(BuildRecord, Vec<BuildStep>)],
) -> Option<(&'a BuildRecord, &'a BuildStep)> {
    let wanted = position(&step.name);
    for (b, steps) in earlier {
        let usable = |s: &&BuildStep| s.preimage.is_some() && s.kind == step.kind;
        let hit = steps
            .iter()
            .filter(usable)
            .find(|s| s.name == step.name)
            .or_else(|| {
                wanted.as_ref().and_then(|p| {
                    steps
                        .iter()
                        .filter(usable)
                        .find(|s| position(&s.name).as_ref() == Some(p))
                })
            })
            .or_else(|| {
                step.location.as_ref().and_then(|l| {
                    steps
                        .iter()
                        .filter(usable)
                        .find(|s| s.location.as_ref() == Some(l))
                })
            });
        if let Some(s) = hit {
            return Some((b, s));
        }
    }
    None
}

/// A cache record whose preimage has this step name, most recently used first.
fn record_by_name(store: &Store, name: &str, not: &dray_llb::Digest) -> Option<Preimage> {
    let records = store.cache_records().ok()?;
    records
        .iter()
        .rev()
        .filter(|r| r.key != *not)
        .filter_map(|r| parse(&r.preimage))
        .find(|p| p.name == name)
}

/// `[build 2/5] COPY . .` → `[build 2/5]`.
fn position(name: &str) -> Option<String> {
    let end = name.find(']')?;
    name.starts_with('[').then(|| name[..=end].to_owned())
}

/// `[build 2/5] …` → `build`; `[2/5] …` → `None`.
pub(crate) fn stage_label(name: &str) -> Option<String> {
    let pos = position(name)?;
    let inner = pos.trim_start_matches('[').trim_end_matches(']');
    let (label, _) = inner.rsplit_once(' ')?;
    Some(label.to_owned())
}

/// The ENV (`"ENV"`) and ARG (`"ARG"`) values of a stage recorded in a build's info.
fn vars<'a>(
    info: &'a Value,
    stage: Option<&str>,
) -> BTreeMap<String, (&'static str, Option<String>)> {
    let stages = info["vars"]["stages"].as_object();
    let picked: Option<&'a Value> = stages.and_then(|m| match stage {
        Some(s) => m.get(s),
        None => m.values().max_by_key(|v| v["index"].as_u64()),
    });
    let mut out = BTreeMap::new();
    if let Some(globals) = info["vars"]["global_args"].as_object() {
        for (k, v) in globals {
            out.insert(k.clone(), ("ARG", v.as_str().map(str::to_owned)));
        }
    }
    if let Some(st) = picked {
        // ARG values also show in the stage's environment; a declared ARG is named as one.
        for (k, v) in st["env"].as_object().into_iter().flatten() {
            out.insert(k.clone(), ("ENV", v.as_str().map(str::to_owned)));
        }
        for (k, v) in st["args"].as_object().into_iter().flatten() {
            out.insert(k.clone(), ("ARG", v.as_str().map(str::to_owned)));
        }
    }
    out
}

/// `$NAME` and `${NAME…}` in an instruction.
fn referenced_vars(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let mut j = i + 1;
            if bytes.get(j) == Some(&b'{') {
                j += 1;
            }
            let start = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j > start && !bytes[start].is_ascii_digit() {
                let name = text[start..j].to_owned();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse(json: &str) -> Option<Preimage> {
    serde_json::from_str(json).ok()
}

/// For `cache diff`: the first differing component between two recorded steps.
pub(crate) fn diff_steps(
    store: &Store,
    a_build: &BuildRecord,
    a: &BuildStep,
    b_build: &BuildRecord,
    b: &BuildStep,
) -> String {
    let (Some(pa), Some(pb)) = (
        a.preimage.as_deref().and_then(parse),
        b.preimage.as_deref().and_then(parse),
    ) else {
        return "no key recorded".to_owned();
    };
    let files = b.files.and_then(|d| store.context_files(&d).ok().flatten());
    let cx = Compare {
        store,
        old_build: Some(a_build),
        new_build: b_build,
        old_step: Some(a),
        new_step: b,
        files: files.as_deref(),
        explained: &b_build.steps,
    };
    cx.compare(&pa, &pb)
        .into_iter()
        .next()
        .unwrap_or_else(|| "its key changed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_timestamps_alone_is_a_source_date_epoch_change() {
        let op = |t: Value, mode: u32| {
            serde_json::json!({"actions": [
                {"copy": {"src": "/a", "timestamp": t.clone(), "mode": mode}},
                {"mkdir": {"path": "/d", "timestamp": t}},
            ]})
        };
        let (a, b) = (op(1_700_000_000.into(), 1), op(1_700_000_001.into(), 1));
        assert_eq!(
            epoch_reason(&a, &b).as_deref(),
            Some("SOURCE_DATE_EPOCH changed: 1700000000 -> 1700000001")
        );
        assert_eq!(
            epoch_reason(&op(Value::Null, 1), &b).as_deref(),
            Some("SOURCE_DATE_EPOCH changed: (unset) -> 1700000001")
        );
        assert_eq!(epoch_reason(&a, &a), None, "nothing changed");
        assert_eq!(
            epoch_reason(&a, &op(1_700_000_001.into(), 2)),
            None,
            "another field changed too: not the epoch alone"
        );
    }

    #[test]
    fn variables_are_found() {
        assert_eq!(
            referenced_vars("COPY a ${DEST:-/x}/$SUB $1"),
            ["DEST", "SUB"]
        );
        assert_eq!(
            stage_label("[build 2/5] COPY . ."),
            Some("build".to_owned())
        );
        assert_eq!(stage_label("[2/5] COPY . ."), None);
    }

    #[test]
    fn file_differences_name_the_file_and_the_change() {
        let line = |mode: &str, size: &str, digest: &str| FileLine {
            kind: "file".into(),
            mode: mode.into(),
            owner: "0:0".into(),
            size: size.into(),
            digest: digest.into(),
        };
        let old = BTreeMap::from([("/a".to_owned(), line("644", "1", "x"))]);
        let sel = ["/".to_owned()];
        let edited = BTreeMap::from([("/a".to_owned(), line("644", "1", "y"))]);
        assert_eq!(
            file_difference(&old, &edited, &sel).unwrap(),
            "context file /a: content changed"
        );
        let chmod = BTreeMap::from([("/a".to_owned(), line("755", "1", "z"))]);
        assert_eq!(
            file_difference(&old, &chmod, &sel).unwrap(),
            "context file /a: mode changed (644 -> 755)"
        );
        assert_eq!(file_difference(&old, &old, &sel), None);
        assert_eq!(
            file_difference(&old, &BTreeMap::new(), &sel).unwrap(),
            "context file /a was removed"
        );
    }
}
