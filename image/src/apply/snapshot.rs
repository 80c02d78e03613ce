//! [`unpack_layer`]: a layer blob of the store → a committed snapshot named by its ChainID.

use dray_cache::{Claimed, Committed, SnapshotId, SnapshotKind, Store};

use super::{ApplyMode, ApplyOptions, apply_layer};
use crate::{Digest, Error};

/// Unpacks the layer blob `blob` (in the store's `blobs/`) into a snapshot on `parent` whose ID
/// is `chain_id` (the layer's ChainID: architecture B4), unless that snapshot exists, and
/// returns it committed.
///
/// The layer is applied in [`ApplyMode::OverlayDiff`] into a fresh snapshot, its `diff_id`
/// checked against `diff_id` (the image config's), and only then committed as a
/// [`SnapshotKind::Unpacked`] snapshot described by `description`. A failure, or a process
/// killed half way, leaves nothing committed. Builds unpacking the same layer at once are
/// serialized by [`Store::claim`]: the second waits and then returns the first one's snapshot.
///
/// A ChainID names the filesystem of a whole stack of layers, so an existing snapshot of that
/// ID is returned even if its parent is another snapshot than `parent` (it then holds the same
/// content in other snapshots).
pub fn unpack_layer(
    store: &Store,
    parent: Option<&Committed>,
    chain_id: &Digest,
    blob: &Digest,
    diff_id: &Digest,
    description: &str,
) -> Result<Committed, Error> {
    let id: SnapshotId = chain_id.to_string().parse()?;
    let active = match store.claim(parent, id)? {
        Claimed::Committed(c) => return Ok(c),
        Claimed::Prepared(active) => active,
    };
    let layer = blob.to_string();
    let file = store.blobs().open(blob)?;
    let stats = apply_layer(
        file,
        &active.fs(),
        &layer,
        &ApplyOptions::new(ApplyMode::OverlayDiff),
    )?;
    stats.verify_diff_id(&layer, diff_id)?;
    Ok(store.commit_claimed(active, SnapshotKind::Unpacked, description)?)
}
