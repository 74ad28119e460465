//! Jobs that leave the books without running: cancelled, expired (start deadlines and their
//! timers), or moved along by their lane; and the pool side of a job (`JobPool`).

use std::cmp::Ordering as CmpOrdering;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::growth::Kick;
use super::{Deferred, Shared, State};
use crate::blocking::{self, Lender};
use crate::error::JobError;
use crate::job::LaneQueue;
use crate::job::Priority;
use crate::job::{JobPool, JobState, Place, Task};

/// A waiting job's start deadline, ordered so that `BinaryHeap` pops the earliest first.
pub(crate) struct Timer<S> {
    pub(crate) at: Instant,
    pub(crate) task: Arc<dyn Task<S>>,
}

impl<S> PartialEq for Timer<S> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl<S> Eq for Timer<S> {}
impl<S> PartialOrd for Timer<S> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<S> Ord for Timer<S> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.at.cmp(&self.at) // reversed: the earliest deadline is the heap's top
    }
}

impl<S: 'static> Shared<S> {
    /// Records a waiting job's start deadline; tells the monitor if it is the new earliest.
    pub(crate) fn add_timer(&self, st: &mut State<S>, at: Instant, task: Arc<dyn Task<S>>) {
        // Cancelled jobs leave their timers behind; sweep them once they dominate.
        if st.timers.len() >= 64 && st.timers.len() > 2 * st.queued() {
            st.timers.retain(|t| t.task.state().is_waiting());
        }
        let earliest = st.timers.peek().is_none_or(|t| at < t.at);
        st.timers.push(Timer { at, task });
        if earliest {
            self.monitor.notify_one();
        }
    }

    /// Expires every waiting job whose start deadline is `now` or earlier.
    pub(crate) fn expire_due(&self, st: &mut State<S>, now: Instant, after: &mut Deferred<S>) {
        let mut freed = false;
        while st.timers.peek().is_some_and(|t| t.at <= now) {
            let Some(Timer { task, .. }) = st.timers.pop() else {
                break;
            };
            if self.unqueue(st, task.state(), task.meta().lane(), after) {
                st.counts.expired += 1;
                after.discard.push((task, JobError::Expired));
                freed = true;
            }
        }
        if freed {
            self.publish_len(st);
            self.room_freed(st, after);
        }
    }

    /// Takes a waiting job out of the books: flips it to `DROPPED` and frees its slot in the
    /// queue, its lane, or its worker's private queue; a lane whose head it was moves on.
    /// Returns `false` if the job had already left (claimed, or dropped by someone else).
    /// The caller counts the job and resolves it.
    pub(crate) fn unqueue(
        &self,
        st: &mut State<S>,
        job: &JobState,
        lane: Option<&Arc<LaneQueue<S>>>,
        after: &mut Deferred<S>,
    ) -> bool {
        match job.drop_waiting() {
            None => false,
            Some(Place::Lane) => {
                if let Some(lane) = lane {
                    lane.jobs
                        .lock()
                        .waiting
                        .retain(|t| !std::ptr::eq(t.state(), job));
                }
                st.lane_waiting -= 1;
                true
            }
            Some(Place::Queue) => {
                // A broadcast job lives in a private queue; everything else in the shared one.
                let in_private = (st.private_len > 0)
                    .then(|| {
                        st.private
                            .iter()
                            .position(|(_, q)| q.iter().any(|t| std::ptr::eq(t.state(), job)))
                    })
                    .flatten();
                if let Some(i) = in_private {
                    st.private[i].1.retain(|t| !std::ptr::eq(t.state(), job));
                    st.private_len -= 1;
                } else {
                    st.queue.note_dropped(job.priority);
                    if let Some(lane) = lane {
                        self.advance_lane(st, lane, after);
                    }
                }
                true
            }
        }
    }

    /// Called under the lock when a lane's head has resolved: moves the lane's next job into
    /// the queue, or marks the lane idle.
    pub(crate) fn advance_lane(
        &self,
        st: &mut State<S>,
        lane: &LaneQueue<S>,
        after: &mut Deferred<S>,
    ) {
        let mut jobs = lane.jobs.lock();
        while let Some(next) = jobs.waiting.pop_front() {
            if next.state().unlane() {
                st.lane_waiting -= 1;
                let priority = next.state().priority;
                st.queue.push(next);
                drop(jobs);
                self.publish_len(st);
                after.kick(self.wake_or_grow(st, priority));
                return;
            }
        }
        let slot = jobs.slot;
        jobs.busy = false;
        drop(jobs);
        lane_idle(st, slot);
    }
}

impl<S: 'static> JobPool<S> for Shared<S> {
    fn cancel_queued(&self, job: &JobState, lane: Option<&Arc<LaneQueue<S>>>) -> bool {
        let mut st = self.state.lock();
        let mut after = Deferred::new();
        if !self.unqueue(&mut st, job, lane, &mut after) {
            return false;
        }
        st.counts.cancelled += 1;
        self.publish_len(&st);
        self.room_freed(&mut st, &mut after);
        drop(st);
        after.run(self);
        true
    }

    fn callback_panicked(&self) {
        // ORDERING: a counter; read only for stats.
        self.callback_panics.fetch_add(1, Ordering::Relaxed);
    }

    fn pool_id(&self) -> usize {
        blocking::pool_id(self)
    }

    fn takes_jobs_now(&self) -> bool {
        // ORDERING: a hint.
        self.spinner.load(Ordering::Relaxed)
    }

    fn holds_one_job_at_most(&self) -> bool {
        // ORDERING: a hint.
        self.queued_hint.load(Ordering::Relaxed) <= 1
    }

    fn crowded(&self) -> bool {
        // ORDERING: a hint.
        self.crowded.load(Ordering::Relaxed)
    }

    fn nudge(&self, start: bool) {
        let mut st = self.state.lock();
        if self.startable(&st) == 0 {
            return;
        }
        let kick = if st.idle > 0 {
            if st.wakeups == 0 {
                self.book_wake(&mut st);
                Kick::Wake
            } else {
                Kick::None
            }
        } else if start && st.workers < self.config.eager_workers && self.reserve_worker(&mut st) {
            Kick::Start
        } else {
            return;
        };
        // ORDERING: a hint; the spinner reads it under the lock, with the counts it goes by.
        self.stand_down.store(true, Ordering::Relaxed);
        drop(st);
        self.kick(kick);
    }
}

impl<S: 'static> Lender for Shared<S> {
    fn lends(&self) -> bool {
        self.config.lend
    }

    fn enter_blocked(&self, background: bool) {
        let mut st = self.state.lock();
        st.blocked += 1;
        if background {
            st.bg_running -= 1;
        }
        // This thread stops serving until its wait ends: if jobs wait with no one to take
        // them, wake a worker, or lend one now (the limit just rose by one) rather than after
        // a stall — as for an interactive job, since someone waits on the pool right now.
        let kick = self.wake_or_grow(&mut st, Priority::Interactive);
        drop(st);
        self.kick(kick);
    }

    fn leave_blocked(&self, background: bool) {
        let mut st = self.state.lock();
        st.blocked -= 1;
        if background {
            st.bg_running += 1;
        }
    }
}

/// Takes the lane at `slot` out of `busy_lanes`, keeping the moved lane's slot right.
pub(crate) fn lane_idle<S>(st: &mut State<S>, slot: usize) {
    st.busy_lanes.swap_remove(slot);
    if let Some(moved) = st.busy_lanes.get(slot) {
        moved.jobs.lock().slot = slot;
    }
}
