//! Include/exclude selection of paths inside a copied or hashed directory, shared by
//! [`fileop`](crate::fileop) and [`contenthash`](crate::contenthash).

use std::path::Path;

use crate::dockerignore::Patterns;
use crate::error::{Error, Result};

/// What to do with one path below the selected root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Take it (and, for a directory, look at what is inside).
    Take,
    /// Leave it and everything below it out.
    Skip,
    /// A directory not taken itself that may hold taken paths: look inside, and take it only
    /// if something inside is taken.
    Descend,
}

/// Compiled `include_patterns`/`exclude_patterns` (`.dockerignore` syntax, paths relative to
/// the selected root).
///
/// * exclude: a path is left out if the patterns exclude it (it or a parent matches, last
///   match wins, `!` re-includes); an excluded directory is still looked into when an
///   exception could re-include something inside it ([`Patterns::may_match_below`]);
/// * include: a path is taken if some include pattern matches it or a parent; other
///   directories are looked into, other files are left out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    include: Option<Patterns>,
    exclude: Option<Patterns>,
}

fn compile(patterns: &[String], which: &'static str) -> Result<Option<Patterns>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Patterns::from_patterns(patterns)
        .map(Some)
        .map_err(|source| Error::Patterns { which, source })
}

impl Filter {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Filter> {
        Ok(Filter {
            include: compile(include, "include")?,
            exclude: compile(exclude, "exclude")?,
        })
    }

    /// Decides for `rel` (relative to the selected root; the root itself is always taken).
    pub(crate) fn select(&self, rel: &Path, is_dir: bool) -> Selection {
        if rel.as_os_str().is_empty() {
            return Selection::Take;
        }
        let text = rel.to_string_lossy();
        let mut descend = false;
        if let Some(exclude) = &self.exclude
            && exclude.is_excluded(&text)
        {
            if is_dir && exclude.may_match_below(&text) {
                descend = true;
            } else {
                return Selection::Skip;
            }
        }
        if let Some(include) = &self.include
            && !include.is_excluded(&text)
        {
            if !is_dir {
                return Selection::Skip;
            }
            descend = true;
        }
        if descend {
            Selection::Descend
        } else {
            Selection::Take
        }
    }
}
