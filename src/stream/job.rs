//! A stream as a pool job: the producer wrapped as the job, and the submission that ties the
//! stream's life to the job's.

use std::sync::Arc;

use super::chan::Cut;
use super::{Receiver, Sender, channel};
use crate::delivery::{Ticket, ToCallback};
use crate::engine::Opts;
use crate::engine::{Refusal, Wait};
use crate::error::JobError;
use crate::job::JobFn;
use crate::submit::Core;

/// A producer wrapped as a pool job: the closure and the sender it writes to. A refused
/// submission gives the closure back.
pub(crate) struct Producer<P, T> {
    pub(crate) producer: P,
    pub(crate) sender: Sender<T>,
}

impl<P, T> JobFn<(), ()> for Producer<P, T>
where
    P: FnOnce(&mut Sender<T>) + Send + 'static,
    T: Send + 'static,
{
    fn call(mut self, _: &mut ()) {
        (self.producer)(&mut self.sender);
    }
}

/// A producer of a [`StatePool`](crate::StatePool): also given the worker's state.
pub(crate) struct StateProducer<P, T> {
    pub(crate) producer: P,
    pub(crate) sender: Sender<T>,
}

impl<S, P, T> JobFn<S, ()> for StateProducer<P, T>
where
    P: FnOnce(&mut S, &mut Sender<T>) + Send + 'static,
    T: Send + 'static,
{
    fn call(mut self, state: &mut S) {
        (self.producer)(state, &mut self.sender);
    }
}

/// Makes the two sides for a pool's stream job: the sender does not end the stream on drop;
/// the job's outcome does (`finisher`).
pub(crate) fn job_channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    let (mut sender, items) = channel(buffer);
    sender.ends_on_drop = false;
    (sender, items)
}

impl<T> Receiver<T> {
    /// The completion callback of the producer's job: ends the stream with the job's error.
    pub(crate) fn finisher(&self) -> impl FnOnce(crate::Outcome<()>) + Send + 'static
    where
        T: Send + 'static,
    {
        let chan = self.chan.clone();
        move |outcome| chan.finish(outcome.err())
    }

    /// A stream that ended before it began: its one item is `Err(err)`.
    pub(crate) fn failed(err: JobError) -> Self {
        let (sender, items) = job_channel(1);
        items.chan.finish(Some(err));
        drop(sender);
        items
    }

    pub(crate) fn set_ticket(&mut self, ticket: Ticket) {
        self.ticket = Some(ticket);
    }

    /// A way to end this stream from outside, held weakly (see [`Cut`]).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn cutter(&self) -> std::sync::Weak<dyn Cut>
    where
        T: Send + 'static,
    {
        let chan: Arc<dyn Cut> = self.chan.clone();
        Arc::downgrade(&chan)
    }

    /// The identity of the pool running the producer (0: a producer of the caller's own).
    pub(super) fn producer_pool(&self) -> usize {
        self.ticket.as_ref().map_or(0, Ticket::pool_id)
    }
}

/// Submits `job` (which writes into the sender of `items`) with `wait`; on success the stream
/// holds the job's ticket, so dropping the stream cancels the job.
pub(crate) fn submit_producer<S, J, T>(
    core: &Core<S>,
    job: J,
    mut items: Receiver<T>,
    wait: Wait,
) -> Result<Receiver<T>, (J, Refusal)>
where
    S: 'static,
    J: JobFn<S, ()>,
    T: Send + 'static,
{
    let finish = items.finisher();
    let ticket = core.submit_job(job, Opts::default(), ToCallback(finish), wait)?;
    items.set_ticket(ticket);
    Ok(items)
}

/// `stream_iter`'s job: builds the iterator on the worker and sends its items.
pub(crate) struct IterJob<F, T> {
    pub(crate) make: F,
    pub(crate) sender: Sender<T>,
}

impl<F, I> JobFn<(), ()> for IterJob<F, I::Item>
where
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
{
    fn call(mut self, _: &mut ()) {
        for item in (self.make)() {
            if self.sender.send(item).is_err() {
                return;
            }
        }
    }
}

/// `stream_iter`'s job on a [`StatePool`](crate::StatePool): the iterator is built from the
/// worker's state.
pub(crate) struct StateIterJob<F, T> {
    pub(crate) make: F,
    pub(crate) sender: Sender<T>,
}

impl<S, F, I> JobFn<S, ()> for StateIterJob<F, I::Item>
where
    F: FnOnce(&mut S) -> I + Send + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
{
    fn call(mut self, state: &mut S) {
        for item in (self.make)(state) {
            if self.sender.send(item).is_err() {
                return;
            }
        }
    }
}
