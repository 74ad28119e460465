//! Closing intake (with or without dropping the queued jobs) and waiting for the threads to exit.

use std::time::Instant;

use super::{Shared, State, cancel::lane_idle};
use crate::blocking::{self, Role};
use crate::error::{JobError, ShutdownTimeout};
use crate::waiters::wake_all;

impl<S: 'static> Shared<S> {
    /// Stops intake and wakes everyone who waits on the pool. With `abort`, every queued job is
    /// flipped to `DROPPED` under the *same* lock acquisition, so no worker can start one of
    /// them after intake closed; they resolve `ShutDown` once the lock is released.
    pub(crate) fn close(&self, abort: bool) {
        let mut st = self.state.lock();
        let mut dropped = Vec::new();
        if abort {
            dropped = st.queue.drain_dropped();
            for (_, private) in &mut st.private {
                dropped.extend(
                    private
                        .drain(..)
                        .filter(|t| t.state().drop_waiting().is_some()),
                );
            }
            st.private_len = 0;
            // Every job waiting in a lane goes too. A lane whose head was just drained is idle
            // now; one whose head is running goes idle when the head ends.
            let mut laned = Vec::new();
            for lane in &st.busy_lanes {
                let mut jobs = lane.jobs.lock();
                laned.extend(
                    jobs.waiting
                        .drain(..)
                        .filter(|t| t.state().drop_waiting().is_some()),
                );
            }
            for task in &dropped {
                if let Some(lane) = task.meta().lane() {
                    let mut jobs = lane.jobs.lock();
                    jobs.busy = false;
                    let slot = jobs.slot;
                    drop(jobs);
                    lane_idle(&mut st, slot);
                }
            }
            st.lane_waiting -= laned.len();
            dropped.extend(laned);
            st.counts.shut_down += dropped.len() as u64;
            self.publish_len(&st);
        }
        // The monitor stops with intake, and with it the timers: workers still expire late jobs
        // when they reach them. Clearing also breaks the cycle pool → timer → job → pool that
        // would otherwise keep a dropped pool alive until its last deadline entry went.
        st.timers.clear();
        let mut wakers = Vec::new();
        let mut rooms = Vec::new();
        if !st.closed {
            st.closed = true;
            st.wakeups += st.idle;
            st.idle = 0;
            self.work.notify_all();
            self.room.notify_all();
            self.monitor.notify_all();
            wakers = st.async_waiters.take();
            rooms = st.inbox_waiters.clone();
        }
        drop(st);
        wake_all(wakers);
        for (_, room) in rooms {
            room.wake_waiters();
        }
        for task in dropped {
            task.discard(JobError::ShutDown);
        }
    }

    /// Waits until every worker and the monitor have exited, or the deadline passes. Called on
    /// one of the pool's own threads (a job, or a callback that the monitor runs), it does not
    /// wait for that thread, and it counts the thread as blocked meanwhile, so queued jobs
    /// still find a worker.
    pub(crate) fn wait_exit(&self, deadline: Option<Instant>) -> Result<(), ShutdownTimeout> {
        let role = blocking::role_in(blocking::pool_id(self));
        let me = usize::from(role == Some(Role::Worker));
        let monitor_is_me = role == Some(Role::Monitor);
        let others_alive = |st: &State<S>| st.workers > me || (st.monitor_alive && !monitor_is_me);
        if !others_alive(&self.state.lock()) {
            return Ok(());
        }
        // The pool of a thread waiting here is this one: it never refuses (shutdown does not
        // wait for its own thread), so the only effect is lending.
        let _blocked = blocking::enter(0);
        let mut st = self.state.lock();
        while others_alive(&st) {
            match deadline {
                None => self.exited.wait(&mut st),
                Some(deadline) => {
                    if self.exited.wait_until(&mut st, deadline).timed_out() && others_alive(&st) {
                        return Err(ShutdownTimeout {
                            running: st.running,
                            queued: st.queued(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(
        &self,
        now: bool,
        deadline: Option<Instant>,
    ) -> Result<(), ShutdownTimeout> {
        self.close(now);
        self.wait_exit(deadline)
    }
}
