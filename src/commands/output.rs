//! `dray build --output`: parsing docker's `type=…,dest=…` syntax, and running the exporters
//! (`dray_image::export`) once the image is assembled.
//!
//! | type | dest | options |
//! |---|---|---|
//! | `oci` | a tar file, `-` (stdout), or with `tar=false` a directory | `name=`, `compression=`, `compression-level=`, `force-compression=`, `tar=` |
//! | `docker` | a tar file or `-` | `name=`, `compression=`, `compression-level=`, `force-compression=` |
//! | `local` | a directory | — |
//! | `tar` | a tar file or `-` | — |
//! | `image` (`registry` = `image` with `push=true`) | — | `name=` (required), `push=` |
//!
//! As docker does, a value without `=` is a shorthand: `-o DIR` is `type=local,dest=DIR` and
//! `-o -` is `type=tar,dest=-`. Fields are CSV: quote one that contains a comma
//! (`"name=a:1,b:2"`). `name=` defaults to the `-t` names. Parse errors are usage errors (clap,
//! exit 2).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use dray_cache::{SnapshotId, Store};
use dray_image::export::{self, ArchiveFormat, ArchiveImage, RootfsOptions};
use dray_image::{AssembleOptions, BaseImage, BuiltImage, Compression};
use dray_llb::{ImageConfig, ImageRef};

/// The exporter an `--output` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputKind {
    Oci,
    Docker,
    Local,
    Tar,
    /// `type=image`: names the image in the store and, with `push=true` (always for
    /// `type=registry`), pushes it to each name's registry.
    Image,
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dest {
    Stdout,
    Path(PathBuf),
}

/// One parsed `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputSpec {
    pub(crate) kind: OutputKind,
    pub(crate) dest: Dest,
    /// `tar=false` (oci only): a layout directory instead of a tar.
    pub(crate) tar: bool,
    /// `name=`: names in the archive (default: the `-t` names).
    pub(crate) names: Vec<ImageRef>,
    /// `compression=` / `compression-level=`: `None` keeps the build's default (gzip).
    pub(crate) compression: Option<Compression>,
    pub(crate) force_compression: bool,
    /// `push=` (image only): push to each name's registry.
    pub(crate) push: bool,
}

impl OutputSpec {
    /// Whether this output writes to stdout (then the image ID is not printed there).
    pub(crate) fn to_stdout(&self) -> bool {
        self.kind != OutputKind::Image && self.dest == Dest::Stdout
    }
}

/// clap's value parser for `--output`.
pub(crate) fn parse_output(value: &str) -> Result<OutputSpec, String> {
    if !value.contains('=') {
        let (kind, dest) = match value {
            "" => return Err("empty output".to_owned()),
            "-" => (OutputKind::Tar, Dest::Stdout),
            path => (OutputKind::Local, Dest::Path(PathBuf::from(path))),
        };
        return Ok(OutputSpec {
            kind,
            dest,
            tar: true,
            names: Vec::new(),
            compression: None,
            force_compression: false,
            push: false,
        });
    }
    let mut kind = None;
    let mut dest = None;
    let mut tar = None;
    let mut names = Vec::new();
    let mut codec: Option<&str> = None;
    let mut level: Option<i32> = None;
    let mut force_compression = false;
    let mut push = None;
    let fields = split_csv(value)?;
    for field in &fields {
        let (key, val) = field
            .split_once('=')
            .ok_or_else(|| format!("field {field:?} is not KEY=VALUE"))?;
        let key = key.trim().to_ascii_lowercase();
        match key.as_str() {
            "type" => {
                kind = Some(match val {
                    "oci" => OutputKind::Oci,
                    "docker" => OutputKind::Docker,
                    "local" => OutputKind::Local,
                    "tar" => OutputKind::Tar,
                    "image" => OutputKind::Image,
                    "registry" => {
                        push = Some(true);
                        OutputKind::Image
                    }
                    other => {
                        return Err(format!(
                            "unknown output type {other:?} (expected oci, docker, local, tar, \
                             image or registry)"
                        ));
                    }
                });
            }
            "dest" => {
                if val.is_empty() {
                    return Err("dest= is empty".to_owned());
                }
                dest = Some(if val == "-" {
                    Dest::Stdout
                } else {
                    Dest::Path(PathBuf::from(val))
                });
            }
            "tar" => tar = Some(parse_bool("tar", val)?),
            "name" => {
                for name in val.split(',').filter(|n| !n.is_empty()) {
                    let r =
                        ImageRef::parse(name).map_err(|e| format!("invalid name {name:?}: {e}"))?;
                    if r.digest().is_some() {
                        return Err(format!(
                            "invalid name {name:?}: a name cannot have a digest"
                        ));
                    }
                    names.push(r);
                }
            }
            "compression" => {
                codec = Some(match val {
                    "gzip" | "zstd" | "uncompressed" => val,
                    other => {
                        return Err(format!(
                            "unknown compression {other:?} (expected gzip, zstd or uncompressed)"
                        ));
                    }
                });
            }
            "compression-level" => {
                level = Some(
                    val.parse()
                        .map_err(|_| format!("compression-level {val:?} is not a number"))?,
                );
            }
            "force-compression" => force_compression = parse_bool("force-compression", val)?,
            "push" => push = Some(push.unwrap_or(false) || parse_bool("push", val)?),
            other => return Err(format!("unknown output option {other:?}")),
        }
    }
    let kind = kind.ok_or("missing type= (oci, docker, local, tar, image or registry)")?;
    if kind == OutputKind::Image {
        if dest.is_some() || tar.is_some() {
            return Err("dest= and tar= do not apply to type=image and type=registry".to_owned());
        }
        if codec.is_some() || level.is_some() || force_compression {
            return Err(
                "compression options are not supported for type=image and type=registry".to_owned(),
            );
        }
        if names.is_empty() {
            return Err("type=image and type=registry need name=REGISTRY/NAME:TAG".to_owned());
        }
        return Ok(OutputSpec {
            kind,
            dest: Dest::Path(PathBuf::new()),
            tar: false,
            names,
            compression: None,
            force_compression: false,
            push: push.unwrap_or(false),
        });
    }
    if push.is_some() {
        return Err("push= applies to type=image only".to_owned());
    }
    let dest = dest.ok_or("missing dest=")?;
    let archive = matches!(kind, OutputKind::Oci | OutputKind::Docker);
    if !archive && (codec.is_some() || level.is_some() || force_compression || !names.is_empty()) {
        return Err(
            "name=, compression=, compression-level= and force-compression= apply to type=oci \
             and type=docker only"
                .to_owned(),
        );
    }
    if tar.is_some() && kind != OutputKind::Oci {
        return Err("tar= applies to type=oci only".to_owned());
    }
    let tar = tar.unwrap_or(true);
    if dest == Dest::Stdout && (kind == OutputKind::Local || !tar) {
        return Err("a directory output cannot go to stdout (dest=-)".to_owned());
    }
    let compression = match (codec, level) {
        (None, None) => None,
        (Some("uncompressed"), Some(_)) => {
            return Err("compression-level does not apply to uncompressed".to_owned());
        }
        (Some("uncompressed"), None) => Some(Compression::Uncompressed),
        (Some("zstd"), level) => {
            let level = level.unwrap_or(3);
            if !(-131_072..=22).contains(&level) {
                return Err(format!(
                    "zstd compression-level {level} is out of range -131072..=22"
                ));
            }
            Some(Compression::Zstd { level })
        }
        (_, level) => {
            let level = level.unwrap_or(6);
            let level = u32::try_from(level)
                .ok()
                .filter(|l| *l <= 9)
                .ok_or_else(|| format!("gzip compression-level {level} is out of range 0..=9"))?;
            Some(Compression::Gzip { level })
        }
    };
    Ok(OutputSpec {
        kind,
        dest,
        tar,
        names,
        compression,
        force_compression,
        push: false,
    })
}

/// The names `type=image`/`type=registry` outputs give the image, each with whether it is
/// pushed.
pub(crate) fn image_names(outputs: &[OutputSpec]) -> Vec<(ImageRef, bool)> {
    outputs
        .iter()
        .filter(|o| o.kind == OutputKind::Image)
        .flat_map(|o| o.names.iter().map(|n| (n.clone(), o.push)))
        .collect()
}

fn parse_bool(key: &str, val: &str) -> Result<bool, String> {
    match val {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key}={val:?}: expected true or false")),
    }
}

/// Splits CSV fields: commas separate, double quotes protect commas, `""` in quotes is `"`.
fn split_csv(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".to_owned());
    }
    fields.push(field);
    Ok(fields.into_iter().filter(|f| !f.is_empty()).collect())
}

/// Checks the outputs together, before the build starts: at most one may use stdout.
pub(crate) fn check(outputs: &[OutputSpec]) -> Result<()> {
    if outputs.iter().filter(|o| o.to_stdout()).count() > 1 {
        anyhow::bail!("only one --output can write to stdout (dest=-)");
    }
    Ok(())
}

/// What the exporters need from a finished build.
pub(crate) struct Exportable<'a> {
    pub(crate) store: &'a Store,
    /// The head's snapshot chain, root first.
    pub(crate) chain: &'a [SnapshotId],
    pub(crate) base: Option<&'a BaseImage>,
    /// The converter's config, before assembly.
    pub(crate) config: &'a ImageConfig,
    /// The options the default image was assembled with (its `now` is reused).
    pub(crate) assemble: &'a AssembleOptions,
    /// The default (gzip) image.
    pub(crate) built: &'a BuiltImage,
    /// The `-t` names.
    pub(crate) tags: &'a [ImageRef],
}

/// Runs every `--output`, in order.
pub(crate) fn export(outputs: &[OutputSpec], build: &Exportable<'_>) -> Result<()> {
    for output in outputs {
        export_one(output, build).with_context(|| match &output.dest {
            Dest::Stdout => format!("failed to export the image ({:?}) to stdout", output.kind),
            Dest::Path(p) => format!("failed to export the image to {}", p.display()),
        })?;
    }
    Ok(())
}

fn export_one(output: &OutputSpec, build: &Exportable<'_>) -> Result<()> {
    let store = build.store;
    let epoch = build.assemble.source_date_epoch;
    match output.kind {
        // Named (and pushed) by the build command, which owns the registry client.
        OutputKind::Image => {}
        OutputKind::Local => {
            let Dest::Path(dir) = &output.dest else {
                anyhow::bail!("a directory output cannot go to stdout");
            };
            let opts = RootfsOptions::new().with_source_date_epoch(epoch);
            export::write_rootfs_dir(store, build.chain, dir, &opts)?;
        }
        OutputKind::Tar => {
            let opts = RootfsOptions::new().with_source_date_epoch(epoch);
            write_stream(&output.dest, |out| {
                export::write_rootfs_tar(store, build.chain, out, &opts).map(|_| ())
            })?;
        }
        OutputKind::Oci | OutputKind::Docker => {
            let manifest = manifest_for(output, build)?;
            let names = if output.names.is_empty() {
                build.tags.to_vec()
            } else {
                output.names.clone()
            };
            let images = [ArchiveImage { manifest, names }];
            match (&output.dest, output.tar) {
                (Dest::Path(dir), false) => export::write_layout_dir(store, &images, dir)?,
                _ => {
                    let format = if output.kind == OutputKind::Docker {
                        ArchiveFormat::Docker
                    } else {
                        ArchiveFormat::Oci
                    };
                    write_stream(&output.dest, |out| {
                        export::write_archive(store, &images, format, out).map(|_| ())
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// The manifest in the output's compression: the default image, or one assembled again (layer
/// records are memoized per compression), with every layer converted if `force-compression`.
fn manifest_for(output: &OutputSpec, build: &Exportable<'_>) -> Result<dray_cache::Descriptor> {
    let Some(compression) = output.compression else {
        return Ok(build.built.manifest.clone());
    };
    let image = if compression == build.assemble.compression {
        build.built.manifest.clone()
    } else {
        let opts = build.assemble.clone().with_compression(compression);
        dray_image::assemble(
            build.store,
            build.chain,
            build.base,
            build.config.clone(),
            &opts,
        )
        .context("failed to assemble the image in the requested compression")?
        .manifest
    };
    if output.force_compression {
        Ok(export::force_compression(build.store, &image, compression)?)
    } else {
        Ok(image)
    }
}

/// Writes to stdout, or atomically to a file (a failed export leaves no partial file).
pub(crate) fn write_stream(
    dest: &Dest,
    write: impl FnOnce(&mut dyn Write) -> Result<(), export::ExportError>,
) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
            write(&mut out)?;
            out.flush().context("failed to write to stdout")?;
        }
        Dest::Path(path) => export::write_atomically(path, write)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax_parses() {
        let o = parse_output("type=oci,dest=img.tar").unwrap();
        assert_eq!(
            (o.kind, o.dest, o.tar),
            (OutputKind::Oci, Dest::Path("img.tar".into()), true)
        );
        let o = parse_output("type=oci,dest=dir,tar=false").unwrap();
        assert!(!o.tar);
        let o = parse_output("type=docker,dest=-,\"name=a:1,b\",compression=zstd,compression-level=9,force-compression=true").unwrap();
        assert_eq!(o.dest, Dest::Stdout);
        assert_eq!(
            o.names.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["docker.io/library/a:1", "docker.io/library/b:latest"]
        );
        assert_eq!(o.compression, Some(Compression::Zstd { level: 9 }));
        assert!(o.force_compression);
        assert_eq!(parse_output("out").unwrap().kind, OutputKind::Local);
        assert_eq!(parse_output("-").unwrap().kind, OutputKind::Tar);
        assert_eq!(
            parse_output("type=oci,dest=x,compression-level=1")
                .unwrap()
                .compression,
            Some(Compression::Gzip { level: 1 })
        );
    }

    #[test]
    fn bad_outputs_say_why() {
        for (value, says) in [
            ("type=zip,dest=x", "unknown output type"),
            ("dest=x", "missing type"),
            ("type=oci", "missing dest"),
            ("type=local,dest=-", "stdout"),
            ("type=oci,dest=-,tar=false", "stdout"),
            ("type=oci,dest=x,compression=lz4", "unknown compression"),
            (
                "type=oci,dest=x,compression=gzip,compression-level=10",
                "out of range",
            ),
            (
                "type=oci,dest=x,compression=zstd,compression-level=23",
                "out of range",
            ),
            ("type=oci,dest=x,compression-level=abc", "not a number"),
            ("type=local,dest=x,compression=gzip", "apply to type=oci"),
            ("type=tar,dest=x,tar=false", "tar= applies"),
            ("type=oci,dest=x,name=Bad:Name", "invalid name"),
            ("type=oci,dest=x,bogus=1", "unknown output option"),
            ("type=oci,\"dest=x", "unterminated quote"),
            (
                "type=oci,dest=x,force-compression=maybe",
                "expected true or false",
            ),
        ] {
            let err = parse_output(value).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
        }
    }
}
