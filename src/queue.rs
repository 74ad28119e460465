//! The bounded FIFO behind a pool. It lives inside the pool's lock; it never blocks by itself.
//!
//! A cancelled job cannot be unlinked from the middle of a `VecDeque` cheaply, so it stays as a
//! *tombstone*: it no longer counts against the capacity (`live` drops at once) and it is skipped
//! when popped. Tombstones are swept out whenever they outnumber the live jobs, so memory stays
//! within about twice the capacity however many jobs are cancelled.
//!
//! Rejected alternative: a crossbeam bounded channel. It is lock-free, but a cancelled job would
//! keep its slot until a worker popped it, breaking "cancel frees the slot at once".

use std::collections::VecDeque;
use std::sync::Arc;

use crate::job::Task;

/// Sweep only past this many tombstones, so a few cancels never trigger an O(n) pass.
const SWEEP_MIN: usize = 32;

pub(crate) struct Queue<S> {
    /// Jobs in submission order, tombstones included.
    items: VecDeque<Arc<dyn Task<S>>>,
    /// Jobs in `items` that are still `QUEUED`: the number that counts against the capacity.
    live: usize,
    /// Jobs in `items` that were dropped (cancelled) while queued.
    tombstones: usize,
}

impl<S: 'static> Queue<S> {
    pub(crate) fn new() -> Self {
        Self {
            items: VecDeque::new(),
            live: 0,
            tombstones: 0,
        }
    }

    /// Queued jobs, tombstones excluded.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn push(&mut self, task: Arc<dyn Task<S>>) {
        self.items.push_back(task);
        self.live += 1;
    }

    /// Pops the oldest queued job and claims it (QUEUED → RUNNING), skipping tombstones.
    pub(crate) fn pop_claim(&mut self) -> Option<Arc<dyn Task<S>>> {
        while let Some(task) = self.items.pop_front() {
            if task.state().claim() {
                self.live -= 1;
                return Some(task);
            }
            self.tombstones -= 1;
        }
        None
    }

    /// Records that one queued job was dropped in place (its state already flipped).
    pub(crate) fn note_dropped(&mut self) {
        self.live -= 1;
        self.tombstones += 1;
        if self.tombstones >= SWEEP_MIN && self.tombstones > self.live {
            self.items.retain(|task| task.state().is_queued());
            self.tombstones = 0;
        }
    }

    /// Takes every queued job out, flipping each to `DROPPED`; the caller resolves them outside
    /// the lock.
    pub(crate) fn drain_dropped(&mut self) -> Vec<Arc<dyn Task<S>>> {
        let drained: Vec<_> = self
            .items
            .drain(..)
            .filter(|task| task.state().drop_queued())
            .collect();
        self.live = 0;
        self.tombstones = 0;
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Dequeue, JobCell, JobState, Plain};

    /// A pool stand-in that flips the state, as the real one does under its lock.
    struct NoPool;
    impl Dequeue for NoPool {
        fn cancel_queued(&self, job: &JobState) -> bool {
            job.drop_queued()
        }
    }

    fn job() -> Arc<dyn Task<()>> {
        let (tx, _rx) = oneshot::channel::<crate::Outcome<()>>();
        Arc::new(JobCell::new(Plain(|| ()), tx, Arc::new(NoPool)))
    }

    #[test]
    fn tombstones_are_swept_so_memory_stays_bounded() {
        let mut q = Queue::new();
        let keep = job();
        q.push(keep.clone());
        for _ in 0..10_000 {
            let t = job();
            q.push(t.clone());
            assert!(t.state().drop_queued());
            q.note_dropped();
            assert_eq!(q.len(), 1, "a dropped job frees its slot at once");
            assert!(
                q.items.len() <= 2 * SWEEP_MIN + 2,
                "{} items held",
                q.items.len()
            );
        }
        let popped = q.pop_claim().expect("the live job is still there");
        assert!(Arc::ptr_eq(&popped, &keep));
        assert!(q.pop_claim().is_none());
        assert_eq!((q.len(), q.tombstones), (0, 0));
    }

    #[test]
    fn drain_returns_only_live_jobs() {
        let mut q = Queue::new();
        let (a, b) = (job(), job());
        q.push(a.clone());
        q.push(b.clone());
        assert!(a.state().drop_queued());
        q.note_dropped();
        let drained = q.drain_dropped();
        assert_eq!(drained.len(), 1);
        assert!(Arc::ptr_eq(&drained[0], &b));
        assert_eq!(q.len(), 0);
    }
}
