//! The worker threads that deflate gzip blocks, and the budget that bounds how many blocks are
//! in flight across every layer being written at once.
//!
//! By default all layers share one process-wide pool of `available_parallelism` workers
//! ([`Pool::shared`]), so exporting several layers at once (assembly's `jobs`) neither
//! oversubscribes the CPUs nor multiplies the memory held in blocks. An explicit thread count
//! gets a pool of its own for that one layer ([`Pool::new`]), joined when the layer is done.
//!
//! Nothing here affects the bytes produced: a job's output depends only on its input.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

/// A unit of work. It reports its own result (through a channel it captured).
pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Blocks that may be in flight per worker thread, across all layers: two keeps every worker
/// busy while the writers refill the queue, and bounds the memory held in blocks.
const BLOCKS_PER_THREAD: usize = 2;

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Free in-flight slots; see [`Pool::try_acquire`].
    permits: AtomicUsize,
}

/// A fixed set of worker threads running [`Job`]s in submission order.
pub(super) struct Pool {
    shared: Arc<Shared>,
    threads: usize,
    handles: Vec<JoinHandle<()>>,
}

/// The default number of compression threads: the CPUs this process may use.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

impl Pool {
    /// A pool of `threads` (at least 1) workers, stopped and joined on drop.
    pub(super) fn new(threads: usize) -> std::io::Result<Pool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            permits: AtomicUsize::new(threads * BLOCKS_PER_THREAD),
        });
        let mut pool = Pool {
            shared,
            threads,
            handles: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let handle = std::thread::Builder::new()
                .name(format!("dray-deflate-{i}"))
                .spawn(move || work(&shared))?;
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// The process-wide pool of [`default_threads`] workers, started on first use. `None` when
    /// its threads could not be started (callers then compress on their own thread).
    pub(super) fn shared() -> Option<&'static Pool> {
        static SHARED: OnceLock<Option<Pool>> = OnceLock::new();
        SHARED
            .get_or_init(|| Pool::new(default_threads()).ok())
            .as_ref()
    }

    /// Queues `job`; it runs on the first free worker.
    pub(super) fn submit(&self, job: Job) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.jobs.push_back(job);
        drop(q);
        self.shared.ready.notify_one();
    }

    /// Takes one in-flight slot if one is free; it is returned when the [`Permit`] is dropped.
    /// A writer that gets none must first collect a block it already has in flight (which
    /// frees that block's slot) — or, with none in flight, submit without a permit: each writer
    /// may always have one block in flight, so no writer ever waits on another.
    pub(super) fn try_acquire(&self) -> Option<Permit> {
        self.shared
            .permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Permit {
                shared: Arc::clone(&self.shared),
            })
    }

    /// The most blocks one writer should have in flight.
    pub(super) fn max_in_flight(&self) -> usize {
        self.threads * BLOCKS_PER_THREAD
    }
}

/// One in-flight slot of a pool's budget, held by a block from submission until it is written
/// out (or dropped, when its writer failed).
pub(super) struct Permit {
    shared: Arc<Shared>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.permits.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.ready.notify_all();
        for handle in self.handles.drain(..) {
            // A job's panic is caught in `work`; a worker cannot end with one.
            let _ = handle.join();
        }
    }
}

/// A worker: runs jobs until the pool is closed and its queue is empty.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A job reports its own failure; a panic only drops its result channel, which the
        // writer waiting on it sees as an error. The worker survives either way.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_job_and_survives_a_panic() {
        let pool = Pool::new(3).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(|| panic!("job panics")));
        for i in 0..20 {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(i).unwrap()));
        }
        drop(tx);
        let mut got: Vec<i32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn permits_are_bounded() {
        let pool = Pool::new(2).unwrap();
        let n = pool.max_in_flight();
        let mut held: Vec<Permit> = (0..n).map_while(|_| pool.try_acquire()).collect();
        assert_eq!(held.len(), n);
        assert!(pool.try_acquire().is_none());
        held.pop();
        assert!(pool.try_acquire().is_some());
    }
}
