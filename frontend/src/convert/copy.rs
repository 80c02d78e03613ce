//! COPY and ADD (BuildKit's `convert_copy.go`): one file op with a copy action per source,
//! or with `--link` (and no `--chmod`) a copy onto scratch merged over the stage.
//!
//! The copy actions carry Docker's COPY rules the way BuildKit encodes them, so the file-op
//! implementation needs no knowledge of the Dockerfile:
//!
//! | source | `src` | flags set |
//! |---|---|---|
//! | context / stage / image path | `/` + cleaned path (may hold wildcards) | `follow_symlinks`, `dir_copy_contents`, `create_dest_path`, `allow_wildcard`, `allow_empty_wildcard`; `attempt_unpack` for ADD (or `--unpack`) |
//! | `--parents a/./b/*.go` | the pivot `/a` | as above, plus `include_patterns = ["b/*.go"]` |
//! | ADD `<url>` | `/<file name>` of an HTTP source (`--checksum` on the source) | `create_dest_path`; `attempt_unpack` only with `--unpack` |
//! | heredoc `<<EOF` | `/EOF` of a 0644 `Mkfile` on scratch | `create_dest_path` |
//!
//! Every action also gets `dest` (relative to WORKDIR; a trailing `/`, `.` or an empty path
//! means "into the directory"), `--chown` as `owner` (ids or names, resolved at solve time),
//! `--chmod` as `mode`, `--exclude` as `exclude_patterns` and `SOURCE_DATE_EPOCH` as
//! `timestamp`.

use dray_llb::{Copy, Digest, FileAction, FileChain, HttpAttrs, Mkfile, Mode, SourceOp, State};

use super::dispatch::{StageState, chown, clean_abs, join_keep_slash, metadata};
use super::error::Error;
use crate::instructions::{ChmodSpec, Origin, SourcesAndDest};
use crate::shell::Lexer;

/// What COPY and ADD have in common, expanded.
pub(super) struct CopySpec<'a> {
    pub(super) origin: &'a Origin,
    pub(super) files: &'a SourcesAndDest,
    pub(super) exclude: Vec<String>,
    /// Where local sources come from: the build context, a stage or an image.
    pub(super) source: State,
    pub(super) is_add: bool,
    pub(super) chown: Option<String>,
    pub(super) chmod: Option<(String, ChmodSpec)>,
    pub(super) link: bool,
    pub(super) parents: bool,
    pub(super) checksum: Option<String>,
    pub(super) unpack: Option<bool>,
}

fn is_http(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// BuildKit treats `…/repo.git`, `…/repo.git#ref` and `git@host:…` as git sources.
fn is_git(src: &str) -> bool {
    let no_fragment = src.split('#').next().unwrap_or(src);
    src.starts_with("git@")
        || src.starts_with("git://")
        || (is_http(src) && no_fragment.trim_end_matches('/').ends_with(".git"))
}

/// The file name an HTTP download is stored under: the URL path's last segment.
fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once('/')
        .map_or("", |(_, p)| p);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." => base.to_owned(),
        _ => "__unnamed__".to_owned(),
    }
}

/// The destination relative to the working directory (`pathRelativeToWorkingDir`): `.` and
/// the empty path mean "into the cwd", a trailing `/` is kept.
pub(super) fn copy_dest(cwd: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    join_keep_slash(cwd, dest)
}

impl StageState {
    pub(super) fn copy(
        &mut self,
        spec: CopySpec<'_>,
        lexer: &Lexer,
        file: &str,
    ) -> Result<(), Error> {
        let span = spec.origin.span;
        let dest = copy_dest(self.state.cwd(), &spec.files.dest.value);
        let owner = spec.chown.as_deref().map(chown);
        let mode = spec.chmod.as_ref().map(|(text, parsed)| match parsed {
            ChmodSpec::Octal(bits) => Mode::Octal(*bits),
            ChmodSpec::Symbolic(_) => Mode::Symbolic(text.clone()),
        });
        let sources: Vec<&str> = spec
            .files
            .sources
            .iter()
            .map(|w| w.value.as_str())
            .collect();

        if spec.checksum.is_some() {
            let reason = if !spec.is_add {
                Some("checksum can't be specified for COPY")
            } else if sources.len() != 1 {
                Some("checksum can't be specified for multiple sources")
            } else if !sources.first().is_some_and(|s| is_http(s) || is_git(s)) {
                Some("checksum requires HTTP(S) or Git sources")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::Checksum { reason, span });
            }
        }

        let keyword = if spec.is_add { "ADD" } else { "COPY" };
        let mut msg = String::from(keyword);
        if spec.parents {
            msg.push_str(" --parents");
        }
        if let Some(c) = &spec.chown {
            msg.push_str(&format!(" --chown={c}"));
        }
        if let Some((c, _)) = &spec.chmod {
            msg.push_str(&format!(" --chmod={c}"));
        }

        let text = self.display_text(lexer, &spec.origin.original);
        let name = self.prefix(&text);
        let mut chain = FileChain::new();

        for &src in &sources {
            msg.push_str(&format!(" {src}"));
            if is_git(src) && !spec.is_add && is_http(src) {
                return Err(Error::GitInCopy { span });
            }
            if is_git(src) && spec.is_add {
                return Err(Error::GitSource {
                    source_url: src.to_owned(),
                    span,
                });
            }
            if is_http(src) {
                if !spec.is_add {
                    return Err(Error::UrlInCopy { span });
                }
                let filename = url_file_name(src);
                let checksum = spec
                    .checksum
                    .as_deref()
                    .map(|c| {
                        c.parse::<Digest>()
                            .map_err(|source| Error::InvalidChecksum {
                                value: c.to_owned(),
                                source,
                                span,
                            })
                    })
                    .transpose()?;
                let download = State::source(
                    SourceOp::http(
                        src,
                        HttpAttrs {
                            checksum,
                            filename: Some(filename.clone()),
                            mode: None,
                        },
                    ),
                    self.node_platform(),
                )
                .named(name.clone());
                chain = chain.copy(
                    &download,
                    Copy {
                        src: format!("/{filename}"),
                        dest: dest.clone(),
                        owner: owner.clone(),
                        mode: mode.clone(),
                        attempt_unpack: spec.unpack.unwrap_or(false),
                        create_dest_path: true,
                        exclude_patterns: spec.exclude.clone(),
                        timestamp: self.epoch,
                        ..Copy::default()
                    },
                );
                continue;
            }
            // `--parents`: the part before `/./` is the pivot the structure is kept from;
            // without one, the whole path is kept (pivot `/`). BuildKit encodes this as a copy
            // of the pivot's contents filtered by an include pattern.
            let (src_path, include) = if spec.parents {
                let (pivot, pattern) = match src.split_once("/./") {
                    Some((pivot, pattern)) => (pivot, pattern),
                    None => ("/", src),
                };
                let pattern = clean_abs(pattern);
                (
                    clean_abs(pivot),
                    vec![pattern.trim_start_matches('/').to_owned()],
                )
            } else {
                (clean_abs(src), Vec::new())
            };
            chain = chain.copy(
                &spec.source,
                Copy {
                    src: src_path,
                    dest: dest.clone(),
                    owner: owner.clone(),
                    mode: mode.clone(),
                    follow_symlinks: true,
                    dir_copy_contents: true,
                    attempt_unpack: spec.unpack.unwrap_or(spec.is_add),
                    create_dest_path: true,
                    allow_wildcard: true,
                    allow_empty_wildcard: true,
                    include_patterns: include,
                    exclude_patterns: spec.exclude.clone(),
                    timestamp: self.epoch,
                    ..Copy::default()
                },
            );
        }

        for content in &spec.files.contents {
            msg.push_str(&format!(" <<{}", content.path));
            let inline = State::scratch().file(FileChain::new().then(FileAction::Mkfile(Mkfile {
                path: content.path.clone(),
                mode: 0o644,
                data: content.data.clone(),
                owner: None,
                timestamp: None,
            })));
            let inline = if let Some(p) = self.node_platform() {
                inline.with_platform(p)
            } else {
                inline
            }
            .named("[internal] preparing inline document");
            chain = chain.copy(
                &inline,
                Copy {
                    src: clean_abs(&content.path),
                    dest: dest.clone(),
                    owner: owner.clone(),
                    mode: mode.clone(),
                    create_dest_path: true,
                    exclude_patterns: spec.exclude.clone(),
                    timestamp: self.epoch,
                    ..Copy::default()
                },
            );
        }
        msg.push_str(&format!(" {}", spec.files.dest.value));

        let meta = |name: String| metadata(name, file, spec.origin, self.ignore_cache);
        if spec.link && spec.chmod.is_none() {
            // BuildKit names the copy and the merge with the same step index.
            let base = State::scratch();
            let base = match self.node_platform() {
                Some(p) => base.with_platform(p),
                None => base,
            };
            let copied = base.file(chain).with_metadata(meta(name.clone()));
            let prefix = name
                .len()
                .checked_sub(text.len())
                .and_then(|end| name.get(..end))
                .unwrap_or_default();
            let link_name = format!("{prefix}LINK {text}");
            let merged = State::merge([self.state.clone(), copied]).with_metadata(meta(link_name));
            self.state = merged;
        } else {
            self.state = self.state.file(chain).with_metadata(meta(name));
        }
        self.commit(msg, true, true);
        Ok(())
    }
}

/// Whether a source is downloaded rather than read from the context (for follow paths).
pub(super) fn is_remote(src: &str) -> bool {
    is_http(src) || is_git(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names() {
        assert_eq!(url_file_name("https://x.org/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_file_name("https://x.org/"), "__unnamed__");
        assert_eq!(url_file_name("https://x.org"), "__unnamed__");
    }

    #[test]
    fn destinations() {
        assert_eq!(copy_dest("/src", "."), "/src/");
        assert_eq!(copy_dest("/src", "./"), "/src/");
        assert_eq!(copy_dest("/src", "bin"), "/src/bin");
        assert_eq!(copy_dest("/src", "/opt/"), "/opt/");
        assert_eq!(copy_dest("/", ""), "/");
    }

    #[test]
    fn git_detection() {
        assert!(is_git("https://github.com/moby/buildkit.git#v0.1"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/a.tar"));
    }
}
