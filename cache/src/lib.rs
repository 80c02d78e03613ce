//! dray's on-disk store: the state directory, its lock, the content-addressed blob store, the
//! snapshot store, the SQLite metadata index and the OCI `index.json` of tagged images.
//!
//! **Start reading at [`Store`]**: [`Root::resolve`] picks the directory, [`Store::open`]
//! creates or checks the layout and takes the lock. Then [`ContentStore`] (blobs), [`Store::prepare`] /
//! [`Store::commit`] (snapshots), [`Store::claim`] (snapshots with a chosen ID, such as a base
//! layer's ChainID, prepared by one build at a time), [`Store::lookup`] / [`Store::save`] (cache records),
//! [`Store::lease`] (GC protection) and [`Store::tag`] (images).
//!
//! **What this crate is not**: it does not compute cache keys (the solver does, architecture B3),
//! does not hash directory trees (contenthash; it only memoizes per-file digests), does not
//! make or apply layer tars (`dray-image`) and does not mount anything. It never interprets a
//! manifest beyond following the digests it names (tag checks, GC roots, verify).
//!
//! **Cache management** (issue 7): build records (`builds.rs`), GC roots and the automatic GC
//! policy read from `<root>/dray.toml` (`gc.rs`), prune (`prune.rs`), `cache ls`/`du`
//! (`usage.rs`) and `verify` (`verify.rs`); each module documents its tables and rules.
//!
//! # On-disk layout (layout version [`LAYOUT_VERSION`])
//!
//! ```text
//! <root>/
//! ├── VERSION               # layout version ("1\n"); another value is refused (Error::LayoutVersion)
//! ├── lock                  # flock: shared = build, images, cache ls; exclusive = prune, rmi, recovery
//! ├── index.lock            # flock serializing index.json read-modify-write across processes
//! ├── oci-layout            # {"imageLayoutVersion":"1.0.0"}: the root IS an OCI image layout,
//! ├── index.json            #   so `skopeo copy oci:<root>:<name> ...` reads the local image store
//! ├── blobs/sha256/<hex>    # content store: layers, configs, manifests; read-only, verified on write
//! ├── ingest/blob-*         # BlobWriter temp files (same filesystem -> atomic rename into blobs/)
//! ├── ingest/<hex>.partial  # an interrupted download of sha256:<hex>, resumed by the next pull (blobs.rs)
//! ├── snapshots/<id>/fs     # one layer diff (overlay upperdir, or an unpacked layer)
//! ├── snapshots/<id>/work   # overlay workdir while the snapshot is active; removed on commit
//! ├── snapshots/<id>/fill   # a lazy snapshot's layer being unpacked to fill in its fs/ (lazy.rs)
//! ├── cache-mounts/         # RUN --mount=type=cache directories (owned by the solver)
//! ├── mounts/               # transient mountpoints for running steps (owned by the sandbox)
//! ├── tmp/                  # scratch on the same filesystem: index.json temp files, snapshots being deleted,
//! │                         #   claim-<id> flock files of snapshots being prepared under a chosen ID,
//! │                         #   materialize-<id> flock files of lazy snapshots being filled in
//! ├── dray.toml             # optional settings: [gc] enabled, keep-storage, keep-duration (gc.rs)
//! └── metadata.db           # SQLite (WAL, busy_timeout, user_version = SCHEMA_VERSION): see below
//! ```
//!
//! # Metadata schema (`metadata.db`, `PRAGMA user_version` = [`SCHEMA_VERSION`])
//!
//! Times are milliseconds since the Unix epoch; digests are `sha256:<hex>` text; tables are
//! `STRICT`; foreign keys are enforced.
//!
//! | table | columns | meaning |
//! |---|---|---|
//! | `snapshots` | `id` PK, `parent` → snapshots, `kind` (`diff`/`unpacked`/`lazy`), `description`, `size` (bytes on disk), `created`, `unsynced_boot` (schema 3) | committed snapshots only; a row ⇒ a complete `snapshots/<id>/fs`, or for `lazy` a partial one whose whole diff is its layer blob (`lazy.rs`); `unsynced_boot`: see `durability.rs` |
//! | `cache_keys` | `key` PK, `snapshot` → snapshots, `preimage` (JSON text), `created`, `last_used` | cache key → result; `last_used` is bumped by [`Store::lookup`], or for a build's hits at once by [`Store::touch`] (LRU prune) |
//! | `layers` | (`snapshot` → snapshots ON DELETE CASCADE, `media_type`) PK, `diff_id`, `blob`, `size` | memoized layer export per compression; `blob` is in `blobs/` |
//! | `contenthash` | (`scope`, `path` BLOB) PK, `dev`, `ino`, `size`, `mtime_ns`, `ctime_ns`, `digest` | per-file content digest memo, valid while the stamp matches |
//! | `leases` | `id` PK, `pid`, `pid_start` (`/proc/<pid>/stat` field 22), `started` | one per running build that made a snapshot (written lazily, [`Lease::persist`]); stale once the process is gone |
//! | `lease_refs` | (`lease` → leases ON DELETE CASCADE, `snapshot`) PK | snapshots a lease protects from removal |
//! | `builds`, `build_steps`, `context_files` | see `builds.rs` (schema 2) | build records for `dray builds`, `cache diff` and `--explain-cache` |
//!
//! `cache_keys` also has `location` (schema 2): the `file:line` of the instruction that made it.
//!
//! # Crash safety
//!
//! Any process may be killed at any instruction. These invariants hold anyway, because every
//! write publishes the thing *after* what it depends on, with an `fsync` in between:
//!
//! 1. **A visible blob is complete and verified.** [`BlobWriter`] writes to `ingest/`, checks
//!    digest and size, fsyncs, then renames into `blobs/sha256/` and fsyncs the directory. A
//!    crash leaves at most an `ingest/` file, deleted by the next exclusive open (a download's
//!    `.partial` survives shared opens so the next pull resumes it, verified as a whole).
//! 2. **A `snapshots` row means a complete directory** (a lazy one: a complete layer blob, in
//!    the same transaction). A killed process leaves a directory without a row, deleted by the
//!    next exclusive open. [`Store::remove`] deletes the row before the directory. Against a
//!    **machine** crash, a step's snapshot is not synced at commit but stamped with the boot
//!    ID, and its build syncs once at the end ([`Store::sync_snapshots`]); a stamp from an
//!    earlier boot means the sync never happened, and every open drops such snapshots' cache
//!    records, so their possibly incomplete files are never reused (`durability.rs`). Base
//!    layers (found by ChainID, not through records) are synced at commit (`syncfs`).
//! 3. **A cache record points to a committed snapshot.** [`Store::save`] takes a [`Committed`]
//!    (only obtainable from a commit or a lookup) and the foreign key re-checks the row in the
//!    same transaction; removing a snapshot with a record is refused.
//! 4. **A layer record points to a present blob and a committed snapshot**
//!    ([`Store::put_layer`] checks both; the caller commits the blob first).
//! 5. **A tag points to a present manifest** (and the blobs it names directly): [`Store::tag`]
//!    checks them, then replaces `index.json` atomically (temp file in `tmp/`, fsync, rename,
//!    fsync of the root).
//! 6. **SQLite** runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives a
//!    killed process; after a power loss the newest commits may be gone, but commits are never
//!    reordered, so invariants 2–4 still hold (a lost record is a cache miss; an unsynced
//!    snapshot's record is dropped, invariant 2). Multi-row changes
//!    are single transactions. Closing does not checkpoint (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
//!    the WAL file stays with its committed frames and the next open reads them, and SQLite's
//!    automatic checkpoint (at 1000 WAL pages) keeps it bounded. This changes when bytes move
//!    from the WAL into `metadata.db`, not what is committed or in which order.
//!
//! Deleting content (blobs, snapshots) while other processes run is only safe for what no lease,
//! record, child or tag references, and blob deletion is only safe under the exclusive lock.
//!
//! # Concurrency
//!
//! Several processes can build at once: each holds the shared lock, writes blobs under unique
//! temp names, prepares snapshots under unique IDs, and writes the database in short `BEGIN
//! IMMEDIATE` transactions that wait for each other (`busy_timeout`). Prune takes the exclusive
//! lock and so runs alone.

#![deny(missing_docs)]

mod blobs;
mod builds;
mod claim;
mod db;
mod durability;
pub mod env;
mod error;
mod gc;
mod images;
mod lazy;
mod leases;
mod lock;
mod prune;
mod records;
mod root;
mod snapshots;
mod store;
mod usage;
mod verify;

pub use blobs::{BlobInfo, BlobWriter, ContentStore};
pub use builds::{
    BUILDS_KEPT, BuildRecord, BuildStep, CONTEXT_LISTS_KEPT, ContextFiles, StepStatus,
};
pub use claim::{Claimed, ClaimedActive};
pub use dray_llb::{Digest, DigestError};
pub use error::{Error, Result, SnapshotUser};
pub use gc::{GcPolicy, Storage, parse_duration, parse_size};
pub use images::{Descriptor, OCI_INDEX_MEDIA_TYPE, REF_NAME_ANNOTATION, TaggedImage};
pub use lazy::MaterializeLock;
pub use leases::{Lease, LeaseInfo};
pub use lock::LockMode;
pub use prune::{PruneFilter, PruneOptions, PruneReport, Pruned};
pub use records::{CacheRecord, FileStamp, LayerRecord, MemoScope};
pub use root::{Root, SYSTEM_ROOT};
pub use snapshots::{Active, Committed, SnapshotId, SnapshotInfo, SnapshotKind};
pub use store::Store;
pub use usage::{CacheEntry, DiskUsage};
pub use verify::{Fix, Problem, VerifyReport};

/// The version of the directory layout, written to `<root>/VERSION`. Bump it when a path or file
/// format under the root changes; an old dray then refuses the new root instead of misreading it.
pub const LAYOUT_VERSION: u32 = 1;

/// The version of the `metadata.db` schema (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;
