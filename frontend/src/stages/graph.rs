//! Dependencies between stages (`COPY --from`, `RUN --mount=from=`) and the cycle check.

use crate::instructions::{Command, Dockerfile, Stage};
use crate::span::Span;

use super::error::Error;

/// A dependency of a stage on another stage, through a command.
#[derive(Debug, Clone)]
pub(crate) struct Dependency {
    pub(crate) stage: usize,
    /// What the command wrote (`--from` or `from=` value).
    pub(crate) from: String,
    /// The mount target for mounts, `None` for COPY.
    pub(crate) mount_target: Option<String>,
    /// The flag.
    pub(crate) span: Span,
}

/// The last stage named `name` (case-insensitive), as BuildKit's name map.
pub(crate) fn find_stage(stages: &[Stage], name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    stages
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

/// Stage dependencies of each stage through COPY --from and RUN --mount from=, plus the images
/// used that way.
pub(crate) fn command_deps(
    df: &Dockerfile,
    commands: &[Command],
) -> Result<(Vec<Dependency>, Vec<String>), Error> {
    let mut deps = Vec::new();
    let mut images = Vec::new();
    for command in commands {
        match command {
            Command::Copy(copy) => {
                let Some(from) = &copy.from else { continue };
                let target = if let Ok(index) = from.value.parse::<i64>() {
                    match usize::try_from(index).ok().filter(|i| *i < df.stages.len()) {
                        Some(i) => Some(i),
                        None => {
                            return Err(Error::InvalidStageIndex {
                                index: from.value.clone(),
                                span: from.span,
                            });
                        }
                    }
                } else {
                    find_stage(&df.stages, &from.value)
                };
                match target {
                    Some(i) => deps.push(Dependency {
                        stage: i,
                        from: from.value.clone(),
                        mount_target: None,
                        span: from.span,
                    }),
                    None => images.push(from.value.clone()),
                }
            }
            Command::Run(run) => {
                for mount in &run.mounts {
                    let Some(from) = &mount.from else { continue };
                    match find_stage(&df.stages, from) {
                        Some(i) => deps.push(Dependency {
                            stage: i,
                            from: from.clone(),
                            mount_target: Some(mount.target.clone().unwrap_or_default()),
                            span: mount.span,
                        }),
                        None => images.push(from.clone()),
                    }
                }
            }
            _ => {}
        }
    }
    Ok((deps, images))
}

/// Finds a cycle, as BuildKit's `validateCircularDependency`: a depth-first walk from each
/// stage in order; the error names the stage the walk started from.
pub(crate) fn check_cycles(df: &Dockerfile, edges: &[Vec<(usize, Span)>]) -> Result<(), Error> {
    fn visit(
        stage: usize,
        edges: &[Vec<(usize, Span)>],
        visited: &mut [bool],
        on_path: &mut [bool],
    ) -> Option<Span> {
        if visited[stage] {
            return None;
        }
        visited[stage] = true;
        on_path[stage] = true;
        for &(dep, span) in &edges[stage] {
            if on_path[dep] {
                return Some(span);
            }
            if let Some(span) = visit(dep, edges, visited, on_path) {
                return Some(span);
            }
        }
        on_path[stage] = false;
        None
    }
    let mut visited = vec![false; edges.len()];
    let mut on_path = vec![false; edges.len()];
    for stage in 0..edges.len() {
        if let Some(span) = visit(stage, edges, &mut visited, &mut on_path) {
            return Err(Error::CircularDependency {
                stage: df.stages[stage].display_name(),
                span,
            });
        }
    }
    Ok(())
}
