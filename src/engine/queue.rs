//! The bounded queue behind a pool: one FIFO per priority class. It lives inside the pool's
//! lock; it never blocks by itself.
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
use std::time::Instant;

use crate::job::Priority;
use crate::job::Task;

/// Sweep only past this many tombstones, so a few cancels never trigger an O(n) pass.
const SWEEP_MIN: usize = 32;

/// After this many higher-priority starts while a lower class waited, that class goes next.
pub(crate) const AGING: u32 = 16;

const INTERACTIVE: usize = 0;
const NORMAL: usize = 1;
const BACKGROUND: usize = 2;

/// One priority class: a FIFO with its own tombstone accounting.
struct Class<S> {
    /// Jobs in submission order, tombstones included.
    items: VecDeque<Arc<dyn Task<S>>>,
    /// Jobs in `items` that are still `QUEUED`.
    live: usize,
    /// Jobs in `items` that were dropped (cancelled, expired) while queued.
    tombstones: usize,
}

impl<S: 'static> Class<S> {
    fn new() -> Self {
        Self {
            items: VecDeque::new(),
            live: 0,
            tombstones: 0,
        }
    }
}

pub(crate) struct Queue<S> {
    /// By `Priority::index`.
    classes: [Class<S>; 3],
    /// Live jobs over all classes: the number that counts against the capacity.
    live: usize,
    /// Per class: higher-priority starts since this class last started a job while it had
    /// jobs waiting (see `AGING`).
    passed: [u32; 3],
}

impl<S: 'static> Queue<S> {
    pub(crate) fn new() -> Self {
        Self {
            classes: [Class::new(), Class::new(), Class::new()],
            live: 0,
            passed: [0; 3],
        }
    }

    /// Queued jobs, tombstones excluded.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Queued jobs a worker may start now: all but the background jobs beyond `bg_room`.
    pub(crate) fn startable(&self, bg_room: usize) -> usize {
        let c = &self.classes;
        c[INTERACTIVE].live + c[NORMAL].live + c[BACKGROUND].live.min(bg_room)
    }

    pub(crate) fn push(&mut self, task: Arc<dyn Task<S>>) {
        let i = task.state().priority.index();
        let class = &mut self.classes[i];
        if class.live == 0 {
            self.passed[i] = 0;
        }
        class.items.push_back(task);
        class.live += 1;
        self.live += 1;
    }

    /// The class to serve next (see `Priority` for the rule), among those with live jobs;
    /// background only if `bg_ok`.
    fn pick(&self, bg_ok: bool) -> Option<usize> {
        let has = |i: usize| self.classes[i].live > 0 && (i != BACKGROUND || bg_ok);
        // An aged class goes first; of two, the one passed more often, and on a tie the lower
        // one: a normal start counts against a waiting background job, but a background start
        // does not count against a waiting normal job, so this order keeps both within AGING.
        let aged = [NORMAL, BACKGROUND]
            .into_iter()
            .filter(|&i| has(i) && self.passed[i] >= AGING)
            .max_by_key(|&i| (self.passed[i], i));
        aged.or_else(|| (INTERACTIVE..=BACKGROUND).find(|&i| has(i)))
    }

    /// Pops the next job to run and claims it (QUEUED → RUNNING), skipping tombstones. Jobs
    /// whose start deadline has passed are flipped to `DROPPED` and pushed to `expired` (the
    /// caller counts and resolves them). Background jobs are taken only if `bg_ok`.
    pub(crate) fn pop_claim(
        &mut self,
        bg_ok: bool,
        expired: &mut Vec<Arc<dyn Task<S>>>,
    ) -> Option<Arc<dyn Task<S>>> {
        let mut now = None;
        loop {
            let i = self.pick(bg_ok)?;
            let class = &mut self.classes[i];
            let task = class.items.pop_front()?;
            if !task.state().is_queued() {
                class.tombstones -= 1;
                continue;
            }
            class.live -= 1;
            self.live -= 1;
            if class.live == 0 {
                // Only tombstones are left behind it: free them now.
                class.items.clear();
                class.tombstones = 0;
            }
            if let Some(deadline) = task.meta().deadline()
                && *now.get_or_insert_with(Instant::now) >= deadline
                && task.state().drop_waiting().is_some()
            {
                expired.push(task);
                continue;
            }
            let claimed = task.state().claim();
            debug_assert!(claimed, "a queued job is claimed under the pool lock");
            for lower in i + 1..=BACKGROUND {
                if self.classes[lower].live > 0 {
                    self.passed[lower] = self.passed[lower].saturating_add(1);
                }
            }
            self.passed[i] = 0;
            return Some(task);
        }
    }

    /// Records that one queued job of `priority` was dropped in place (its state already
    /// flipped).
    pub(crate) fn note_dropped(&mut self, priority: Priority) {
        let class = &mut self.classes[priority.index()];
        class.live -= 1;
        class.tombstones += 1;
        self.live -= 1;
        if class.live == 0 {
            class.items.clear();
            class.tombstones = 0;
        } else if class.tombstones >= SWEEP_MIN && class.tombstones > class.live {
            class.items.retain(|task| task.state().is_queued());
            class.tombstones = 0;
        }
    }

    /// Takes every queued job out, flipping each to `DROPPED`; the caller resolves them outside
    /// the lock.
    pub(crate) fn drain_dropped(&mut self) -> Vec<Arc<dyn Task<S>>> {
        let mut drained = Vec::with_capacity(self.live);
        for class in &mut self.classes {
            drained.extend(
                class
                    .items
                    .drain(..)
                    .filter(|task| task.state().drop_waiting().is_some()),
            );
            class.live = 0;
            class.tombstones = 0;
        }
        self.live = 0;
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::LaneQueue;
    use crate::job::{JobCell, JobPool, JobState, Meta, Plain, SlotSink};

    /// A pool stand-in that flips the state, as the real one does under its lock.
    struct NoPool;
    impl JobPool<()> for NoPool {
        fn cancel_queued(&self, job: &JobState, _: Option<&Arc<LaneQueue<()>>>) -> bool {
            job.drop_waiting().is_some()
        }
    }

    fn job_with(priority: Priority, deadline: Option<Instant>) -> Arc<dyn Task<()>> {
        Arc::new(JobCell::new(
            Plain(|| ()),
            SlotSink::<()>::new(),
            Arc::new(NoPool),
            JobState::new(priority, false),
            Meta::new(None, deadline, None),
        ))
    }

    fn job() -> Arc<dyn Task<()>> {
        job_with(Priority::Normal, None)
    }

    fn pop(q: &mut Queue<()>, bg_ok: bool) -> Option<Arc<dyn Task<()>>> {
        q.pop_claim(bg_ok, &mut Vec::new())
    }

    #[test]
    fn higher_priorities_go_first_and_aging_bounds_the_wait() {
        let mut q = Queue::new();
        let bg = job_with(Priority::Background, None);
        let normal = job_with(Priority::Normal, None);
        q.push(bg.clone());
        q.push(normal.clone());
        let interactive: Vec<_> = (0..40)
            .map(|_| job_with(Priority::Interactive, None))
            .collect();
        for t in &interactive {
            q.push(t.clone());
        }
        let mut order = Vec::new();
        while let Some(t) = pop(&mut q, true) {
            order.push(t.state().priority);
        }
        // Both wait out exactly AGING interactive starts. Then the background job goes first
        // (a normal start would be its AGING + 1st higher-priority start), and the normal job
        // next (a background start is not a higher-priority start for it).
        let at = |p| order.iter().position(|&x| x == p).unwrap();
        assert_eq!(at(Priority::Background), AGING as usize);
        assert_eq!(at(Priority::Normal), AGING as usize + 1);
        assert_eq!(order.len(), 42);
    }

    proptest::proptest! {
        /// Whatever the arrivals, a class with jobs waiting sees at most AGING jobs of higher
        /// priority start between two of its own turns (the `Priority` rule: "at most 16
        /// higher-priority starts per turn").
        #[test]
        fn no_class_waits_more_than_aging_starts_for_its_turn(
            steps in proptest::collection::vec((0u8..4, 0u8..3), 1..400)
        ) {
            let mut q = Queue::new();
            let classes = [Priority::Interactive, Priority::Normal, Priority::Background];
            let mut live = [0usize; 3];
            // Higher-priority starts each class has seen since its last turn.
            let mut passed = [0u32; 3];
            for (op, class) in steps {
                if op < 2 {
                    let i = class as usize;
                    if live[i] == 0 {
                        passed[i] = 0;
                    }
                    q.push(job_with(classes[i], None));
                    live[i] += 1;
                } else if let Some(t) = pop(&mut q, true) {
                    let started = t.state().priority.index();
                    live[started] -= 1;
                    passed[started] = 0;
                    for lower in started + 1..3 {
                        if live[lower] > 0 {
                            passed[lower] += 1;
                            proptest::prop_assert!(
                                passed[lower] <= AGING,
                                "{:?} passed {} times", classes[lower], passed[lower]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn background_waits_while_not_allowed() {
        let mut q = Queue::new();
        q.push(job_with(Priority::Background, None));
        assert_eq!(q.startable(0), 0);
        assert!(pop(&mut q, false).is_none());
        assert_eq!(q.len(), 1);
        assert!(pop(&mut q, true).is_some());
    }

    #[test]
    fn expired_jobs_are_returned_never_claimed() {
        let mut q = Queue::new();
        let late = job_with(Priority::Normal, Some(Instant::now()));
        let fine = job();
        q.push(late.clone());
        q.push(fine.clone());
        let mut expired = Vec::new();
        let got = q.pop_claim(true, &mut expired).unwrap();
        assert!(Arc::ptr_eq(&got, &fine));
        assert_eq!(expired.len(), 1);
        assert!(Arc::ptr_eq(&expired[0], &late));
        assert!(!late.state().is_waiting());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn tombstones_are_swept_so_memory_stays_bounded() {
        let mut q = Queue::new();
        let keep = job();
        q.push(keep.clone());
        for _ in 0..10_000 {
            let t = job();
            q.push(t.clone());
            assert!(t.state().drop_waiting().is_some());
            q.note_dropped(Priority::Normal);
            assert_eq!(q.len(), 1, "a dropped job frees its slot at once");
            let held = q.classes[NORMAL].items.len();
            assert!(held <= 2 * SWEEP_MIN + 2, "{held} items held");
        }
        let popped = pop(&mut q, true).expect("the live job is still there");
        assert!(Arc::ptr_eq(&popped, &keep));
        assert!(pop(&mut q, true).is_none());
        assert_eq!((q.len(), q.classes[NORMAL].tombstones), (0, 0));
    }

    #[test]
    fn drain_returns_only_live_jobs() {
        let mut q = Queue::new();
        let (a, b) = (job(), job());
        q.push(a.clone());
        q.push(b.clone());
        assert!(a.state().drop_waiting().is_some());
        q.note_dropped(Priority::Normal);
        let drained = q.drain_dropped();
        assert_eq!(drained.len(), 1);
        assert!(Arc::ptr_eq(&drained[0], &b));
        assert_eq!(q.len(), 0);
    }
}
