//! Where a job's outcome goes: a [`Handle`], an [`Inbox`], or a completion callback; and the
//! [`Ticket`] a caller keeps when the outcome goes elsewhere.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::handle::Handle;
use crate::inbox::{Inbox, InboxSink};
use crate::job::{CancelOutcome, Handoff, JobCell, JobPool, JobRef, Outcome, OutcomeSink, Room};
use crate::job::{SlotSink, drop_quietly};

/// Where a job's outcome goes, chosen on a [`JobBuilder`](crate::JobBuilder): [`ToHandle`]
/// (the default), [`ToInbox`] or [`ToCallback`].
///
/// This trait is sealed: offthread implements it for those three, and only they can be used.
pub trait Delivery<T>: seal::Sealed<T> {
    /// What a submission returns: a [`Handle`] for [`ToHandle`], a [`Ticket`] otherwise.
    type Receipt;
}

pub(crate) mod seal {
    // The sealed half of `Delivery`: reachable (it is a supertrait) but not nameable outside the
    // crate, so its methods may use the crate's own types.
    #![allow(private_interfaces, private_bounds)]

    use super::Delivery;
    use crate::job::OutcomeSink;
    use crate::job::{JobCell, JobPool, Room};
    use std::sync::Arc;

    pub trait Sealed<T>: Sized {
        /// What the worker delivers into.
        type Sink: OutcomeSink<Value = T>;
        /// What the caller keeps to build the receipt.
        type Rest: Send;
        /// Splits the delivery into the sink, the caller's part, and the room to reserve
        /// before queueing (an inbox's capacity), if any.
        fn split(self) -> (Self::Sink, Self::Rest, Option<Arc<dyn Room>>);
        /// The caller's receipt for the queued `cell`.
        fn receipt<S: 'static, J: Send + 'static, P: JobPool<S> + 'static>(
            rest: Self::Rest,
            cell: Arc<JobCell<S, J, Self::Sink, P>>,
        ) -> <Self as Delivery<T>>::Receipt
        where
            Self: Delivery<T>;
    }
}

/// Delivers the outcome to a [`Handle`]: what [`Pool::submit`](crate::Pool::submit) does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToHandle;

#[allow(private_interfaces, private_bounds)]
impl<T: Send + 'static> seal::Sealed<T> for ToHandle {
    type Sink = SlotSink<T>;
    type Rest = ();
    fn split(self) -> (Self::Sink, Self::Rest, Option<Arc<dyn Room>>) {
        (SlotSink::new(), (), None)
    }
    fn receipt<S: 'static, J: Send + 'static, P: JobPool<S> + 'static>(
        _: Self::Rest,
        cell: Arc<JobCell<S, J, Self::Sink, P>>,
    ) -> <Self as Delivery<T>>::Receipt {
        Handle::new(cell)
    }
}

impl<T: Send + 'static> Delivery<T> for ToHandle {
    type Receipt = Handle<T>;
}

/// Delivers the outcome to an [`Inbox`], tagged with a key; set by
/// [`JobBuilder::inbox`](crate::JobBuilder::inbox).
pub struct ToInbox<T, K> {
    pub(crate) inbox: Inbox<T, K>,
    pub(crate) key: K,
}

impl<T, K> fmt::Debug for ToInbox<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToInbox").finish_non_exhaustive()
    }
}

#[allow(private_interfaces, private_bounds)]
impl<T: Send + 'static, K: Send + 'static> seal::Sealed<T> for ToInbox<T, K> {
    type Sink = InboxSink<T, K>;
    type Rest = ();
    fn split(self) -> (Self::Sink, (), Option<Arc<dyn Room>>) {
        let room = self.inbox.room();
        (InboxSink::new(self.inbox, self.key), (), Some(room))
    }
    fn receipt<S: 'static, J: Send + 'static, P: JobPool<S> + 'static>(
        _: Self::Rest,
        cell: Arc<JobCell<S, J, Self::Sink, P>>,
    ) -> <Self as Delivery<T>>::Receipt {
        Ticket::new(cell)
    }
}

impl<T: Send + 'static, K: Send + 'static> Delivery<T> for ToInbox<T, K> {
    type Receipt = Ticket;
}

/// Delivers the outcome to a closure; set by
/// [`JobBuilder::on_complete`](crate::JobBuilder::on_complete).
pub struct ToCallback<C>(pub(crate) C);

impl<C> fmt::Debug for ToCallback<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToCallback").finish_non_exhaustive()
    }
}

/// The sink of [`ToCallback`]: calls the closure, catching a panic.
pub struct CallbackSink<C, T>(C, PhantomData<fn(T)>);

impl<C, T> fmt::Debug for CallbackSink<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink").finish_non_exhaustive()
    }
}

impl<C, T> OutcomeSink for CallbackSink<C, T>
where
    C: FnOnce(Outcome<T>) + Send + 'static,
    T: Send + 'static,
{
    type Value = T;
    type Slot = ();
    fn deliver(self, outcome: Outcome<T>, (): &(), _: &dyn Handoff) -> bool {
        let callback = self.0;
        match panic::catch_unwind(AssertUnwindSafe(move || callback(outcome))) {
            Ok(()) => false,
            Err(payload) => {
                drop_quietly(payload);
                true
            }
        }
    }
}

#[allow(private_interfaces, private_bounds)]
impl<C, T> seal::Sealed<T> for ToCallback<C>
where
    C: FnOnce(Outcome<T>) + Send + 'static,
    T: Send + 'static,
{
    type Sink = CallbackSink<C, T>;
    type Rest = ();
    fn split(self) -> (Self::Sink, (), Option<Arc<dyn Room>>) {
        (CallbackSink(self.0, PhantomData), (), None)
    }
    fn receipt<S: 'static, J: Send + 'static, P: JobPool<S> + 'static>(
        _: Self::Rest,
        cell: Arc<JobCell<S, J, Self::Sink, P>>,
    ) -> <Self as Delivery<T>>::Receipt {
        Ticket::new(cell)
    }
}

impl<C, T> Delivery<T> for ToCallback<C>
where
    C: FnOnce(Outcome<T>) + Send + 'static,
    T: Send + 'static,
{
    type Receipt = Ticket;
}
/// A receipt for a job whose outcome goes to an [`Inbox`] or a callback: it can cancel the job.
///
/// Unlike a [`Handle`], a ticket is not `#[must_use]`: the outcome reaches its inbox or
/// callback whether or not the ticket is kept. Dropping a ticket detaches the job (it still
/// runs and delivers), unless the job was submitted
/// with [`cancel_on_drop`](crate::JobBuilder::cancel_on_drop): then a job that has not started
/// is cancelled, and its `Cancelled` outcome is delivered as usual.
///
/// # Examples
/// ```
/// use offthread::{CancelOutcome, Inbox, JobError, Pool};
/// let pool = Pool::builder().max_workers(1).build()?;
/// let inbox = Inbox::new(8);
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let busy = pool.submit(move || gate.recv().ok())?;
/// let ticket = pool.job(|| 1).inbox(&inbox, "late").submit()?;
/// assert_eq!(ticket.cancel(), CancelOutcome::Dequeued);
/// assert_eq!(inbox.try_recv(), Some(("late", Err(JobError::Cancelled))));
/// release.send(())?;
/// busy.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ticket {
    job: JobRef,
}

impl Ticket {
    fn new<S: 'static, J: Send + 'static, D: OutcomeSink, P: JobPool<S> + 'static>(
        cell: Arc<JobCell<S, J, D, P>>,
    ) -> Self {
        Self {
            job: JobRef::new(cell),
        }
    }

    /// The identity of the pool that runs the job, for the blocking rule.
    pub(crate) fn pool_id(&self) -> usize {
        self.job.control().pool_id()
    }

    /// Cancels the job, as far as that is still possible; see
    /// [`Handle::cancel`](crate::Handle::cancel). A dequeued job still delivers its
    /// `Cancelled` outcome to its inbox or callback. Never blocks on the job.
    pub fn cancel(&self) -> CancelOutcome {
        self.job.control().cancel()
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}
