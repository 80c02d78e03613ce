//! Leases: GC protection for snapshots a running build uses.
//!
//! A lease is a `leases` row naming its process (pid plus the process's start time from
//! `/proc/<pid>/stat`, so a recycled pid is not mistaken for the owner) and `lease_refs` rows
//! naming snapshots. [`Store::remove`] refuses a snapshot held by a lease whose process is alive;
//! leases of dead processes are ignored, and deleted by recovery under the exclusive lock.
//! Dropping the [`Lease`] deletes its rows.
//!
//! **Rows are written lazily.** [`Store::lease`] and [`Lease::protect`] only note the lease and
//! its snapshots in memory; [`Lease::persist`] writes the lease and everything protected so far
//! in one transaction, and every `protect` after it writes at once. A build persists its lease
//! before it prepares its first snapshot (the solver does so before running a step), so a build
//! that only hits the cache writes no lease rows at all. That is safe because nothing can remove
//! a snapshot while a build runs: removal (prune, `rmi`, recovery) needs the **exclusive** store
//! lock and every build holds the shared one for its whole life. The rows make a working build
//! visible ([`Store::leases`]) and are GC roots for any removal that does not wait for builds.

use std::collections::BTreeSet;
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use rusqlite::{TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use crate::db::{from_ms, now_ms};
use crate::error::{Error, Result};
use crate::snapshots::{Committed, SnapshotId};
use crate::store::Store;

/// An RAII lease: the snapshots added to it are protected from removal until it is dropped (or
/// its process dies). Its rows are written lazily: see [`Lease::persist`].
#[derive(Debug)]
pub struct Lease {
    store: Store,
    id: String,
    pid: u32,
    pid_start: u64,
    started: i64,
    state: Mutex<LeaseState>,
}

/// Whether the lease's rows exist yet, and what to write when they are.
#[derive(Debug)]
enum LeaseState {
    /// Not in the database: these snapshots are to be protected once it is.
    Pending(BTreeSet<SnapshotId>),
    /// In the database: `protect` writes at once.
    Persisted,
}

/// A lease row, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease ID.
    pub id: String,
    /// The process that took it.
    pub pid: u32,
    /// When it was taken.
    pub started: SystemTime,
    /// Whether that process is still running.
    pub alive: bool,
}

impl Store {
    /// Takes a new lease for this process. Nothing is written until [`Lease::persist`].
    pub fn lease(&self) -> Result<Lease> {
        let pid = std::process::id();
        let start = process_start_ticks(pid).unwrap_or(0);
        let now = now_ms();
        let mut h = Sha256::new();
        h.update(pid.to_le_bytes());
        h.update(start.to_le_bytes());
        h.update(now.to_le_bytes());
        h.update(next_seq().to_le_bytes());
        let id = hex::encode(&h.finalize()[..12]);
        Ok(Lease {
            store: self.clone(),
            id,
            pid,
            pid_start: start,
            started: now,
            state: Mutex::new(LeaseState::Pending(BTreeSet::new())),
        })
    }

    /// Every lease, live or stale.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT id, pid, pid_start, started FROM leases ORDER BY started, id")
            .map_err(Error::db("list leases"))?;
        stmt.query_map([], |r| {
            let pid = r.get::<_, i64>(1)? as u32;
            Ok(LeaseInfo {
                id: r.get(0)?,
                pid,
                started: from_ms(r.get(3)?),
                alive: process_alive(pid, r.get::<_, i64>(2)? as u64),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(Error::db("list leases"))
    }

    /// The snapshots held by leases of live processes: GC roots for prune.
    pub fn leased_snapshots(&self) -> Result<BTreeSet<SnapshotId>> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT r.snapshot, l.pid, l.pid_start FROM lease_refs r
                 JOIN leases l ON l.id = r.lease",
            )
            .map_err(Error::db("list leased snapshots"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(Error::db("list leased snapshots"))?;
        Ok(rows
            .into_iter()
            .filter(|(_, pid, start)| process_alive(*pid as u32, *start as u64))
            .filter_map(|(id, _, _)| id.parse().ok())
            .collect())
    }

    /// Deletes the leases of processes that are gone.
    pub(crate) fn reap_dead_leases(&self) -> Result<usize> {
        let dead: Vec<String> = self
            .leases()?
            .into_iter()
            .filter(|l| !l.alive)
            .map(|l| l.id)
            .collect();
        let conn = self.db();
        for id in &dead {
            conn.execute("DELETE FROM leases WHERE id = ?1", [id])
                .map_err(Error::db("delete stale lease"))?;
        }
        Ok(dead.len())
    }
}

impl Lease {
    /// The lease ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Protects `snapshot` (and so its whole chain, since a parent cannot be removed while it
    /// has a child) until this lease is dropped. Before [`persist`](Lease::persist) this is
    /// only noted; after it, written at once.
    pub fn protect(&self, snapshot: &Committed) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let LeaseState::Pending(pending) = &mut *state {
            pending.insert(snapshot.id.clone());
            return Ok(());
        }
        self.store
            .db()
            .execute(
                "INSERT OR IGNORE INTO lease_refs (lease, snapshot) VALUES (?1, ?2)",
                params![self.id, snapshot.id.as_str()],
            )
            .map_err(Error::db("add lease ref"))?;
        Ok(())
    }

    /// Writes the lease and the snapshots protected so far, in one transaction (once; later
    /// calls do nothing). Call it before preparing a snapshot on a protected one.
    pub fn persist(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let LeaseState::Pending(pending) = &*state else {
            return Ok(());
        };
        let mut conn = self.store.db();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin lease"))?;
        tx.execute(
            "INSERT INTO leases (id, pid, pid_start, started) VALUES (?1, ?2, ?3, ?4)",
            params![
                self.id,
                self.pid as i64,
                self.pid_start as i64,
                self.started
            ],
        )
        .map_err(Error::db("insert lease"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO lease_refs (lease, snapshot) VALUES (?1, ?2)",
                )
                .map_err(Error::db("add lease ref"))?;
            for id in pending {
                stmt.execute(params![self.id, id.as_str()])
                    .map_err(Error::db("add lease ref"))?;
            }
        }
        tx.commit().map_err(Error::db("commit lease"))?;
        *state = LeaseState::Persisted;
        Ok(())
    }

    /// Whether [`persist`](Lease::persist) has written the lease.
    pub fn is_persisted(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            LeaseState::Persisted
        )
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.is_persisted() {
            return;
        }
        // Best effort: a row left behind (full disk, killed process) is a stale lease, which is
        // ignored once this process is gone and reaped by the next exclusive open.
        let _ = self
            .store
            .db()
            .execute("DELETE FROM leases WHERE id = ?1", [&self.id]);
    }
}

/// A per-process counter, so two leases taken in the same millisecond differ.
fn next_seq() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Field 22 of `/proc/<pid>/stat`: the process start time in clock ticks since boot (see
/// `proc_pid_stat(5)`). Together with the pid it names one process for the life of the machine.
pub(crate) fn process_start_ticks(pid: u32) -> Option<u64> {
    parse_start_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_start_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces or ')': skip to the
    // last ')'. Field 3 is then the first after it, so field 22 is the 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that took a lease is still running.
pub(crate) fn process_alive(pid: u32, start_ticks: u64) -> bool {
    process_start_ticks(pid) == Some(start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_is_alive() {
        let pid = std::process::id();
        let start = process_start_ticks(pid).expect("/proc is mounted");
        assert!(process_alive(pid, start));
        assert!(
            !process_alive(pid, start + 1),
            "a recycled pid must not count as alive"
        );
    }
}
