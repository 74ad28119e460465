//! A job's options that the pool reads (name, start deadline, lane) and a lane's queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::Task;

/// A job's options that the pool reads: its name, start deadline and lane. Boxed, and absent
/// for a plain job, so they cost a plain job one pointer.
pub(crate) struct Meta<S>(Option<Box<Extra<S>>>);

struct Extra<S> {
    name: Option<Arc<str>>,
    deadline: Option<Instant>,
    lane: Option<Arc<LaneQueue<S>>>,
}

impl<S> Meta<S> {
    pub(crate) fn new(
        name: Option<Arc<str>>,
        deadline: Option<Instant>,
        lane: Option<Arc<LaneQueue<S>>>,
    ) -> Self {
        if name.is_none() && deadline.is_none() && lane.is_none() {
            return Self(None);
        }
        Self(Some(Box::new(Extra {
            name,
            deadline,
            lane,
        })))
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.0.as_ref()?.name.as_ref()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.0.as_ref()?.deadline
    }

    pub(crate) fn lane(&self) -> Option<&Arc<LaneQueue<S>>> {
        self.0.as_ref()?.lane.as_ref()
    }

    /// The lane's identity (its queue's address), 0 for a job of no lane.
    pub(crate) fn lane_id(&self) -> usize {
        self.lane().map_or(0, |l| Arc::as_ptr(l) as usize)
    }
}

/// A lane's jobs, touched only under the pool's lock (its own lock is never contended).
pub(crate) struct LaneQueue<S> {
    pub(crate) jobs: Mutex<LaneJobs<S>>,
}

pub(crate) struct LaneJobs<S> {
    /// Jobs behind the head, in submission order; each is `LANED`.
    pub(crate) waiting: VecDeque<Arc<dyn Task<S>>>,
    /// The head is in the pool's queue or running.
    pub(crate) busy: bool,
    /// While busy: this lane's index in the pool's `busy_lanes`.
    pub(crate) slot: usize,
}

impl<S> LaneQueue<S> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            jobs: Mutex::new(LaneJobs {
                waiting: VecDeque::new(),
                busy: false,
                slot: 0,
            }),
        })
    }
}
