//! `Promise<T>`: a result that an immediate-mode UI looks at by reference, every frame.

use std::cell::{OnceCell, RefCell};
use std::fmt;

use crate::{CancelOutcome, Handle, Outcome};

/// The pending result of a job, looked at by reference each frame without being taken: the
/// shape immediate-mode UIs (egui, imgui) draw from. Made by [`Handle::into_promise`] (or
/// `sqlite::Call::into_promise`).
///
/// [`ready`](Self::ready) never blocks: `None` while the job runs, then `Some(&result)` on
/// every call from then on. A `Promise` is `Send` but not `Sync`: it belongs to the thread that
/// draws.
///
/// # Examples
/// ```
/// use offthread::{Outcome, Pool, Promise};
/// let pool = Pool::new();
/// let answer: Promise<Outcome<u64>> = pool.submit(|| 6 * 7)?.into_promise();
/// loop {
///     // each frame:
///     match answer.ready() {
///         Some(Ok(v)) => { assert_eq!(*v, 42); break } // draw the value
///         Some(Err(e)) => panic!("{e}"),               // draw the error
///         None => std::thread::yield_now(),            // draw a spinner
///     }
/// }
/// assert_eq!(answer.ready(), Some(&Ok(42))); // still there, by reference
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Promise<T> {
    /// The handle, until its result is taken into `done`.
    pending: RefCell<Option<Box<dyn Pending<T>>>>,
    done: OnceCell<T>,
}

/// What a promise waits on: a [`Handle`], or a database `Call`.
pub(crate) trait Pending<T>: Send {
    /// The result if it is ready; never blocks.
    fn poll(self: Box<Self>) -> Result<T, Box<dyn Pending<T>>>;
    fn cancel(&self) -> CancelOutcome;
}

impl<T: Send + 'static> Pending<Outcome<T>> for Handle<T> {
    fn poll(self: Box<Self>) -> Result<Outcome<T>, Box<dyn Pending<Outcome<T>>>> {
        (*self).try_wait().map_err(|h| Box::new(h) as _)
    }

    fn cancel(&self) -> CancelOutcome {
        Handle::cancel(self)
    }
}

impl<T> Promise<T> {
    pub(crate) fn new(pending: Box<dyn Pending<T>>) -> Self {
        Self {
            pending: RefCell::new(Some(pending)),
            done: OnceCell::new(),
        }
    }

    /// The result, if the job has finished; never blocks. Once `Some`, always `Some`.
    pub fn ready(&self) -> Option<&T> {
        if self.done.get().is_none() {
            let mut pending = self.pending.borrow_mut();
            if let Some(p) = pending.take() {
                match p.poll() {
                    Ok(result) => {
                        let _ = self.done.set(result);
                    }
                    Err(p) => *pending = Some(p),
                }
            }
        }
        self.done.get()
    }

    /// As [`ready`](Self::ready), mutably.
    pub fn ready_mut(&mut self) -> Option<&mut T> {
        self.ready()?;
        self.done.get_mut()
    }

    /// The result, taken out, if the job has finished; never blocks.
    ///
    /// # Errors
    /// The promise back, when the job has not finished yet.
    pub fn try_take(self) -> Result<T, Self> {
        self.ready();
        let Self { pending, done } = self;
        match done.into_inner() {
            Some(result) => Ok(result),
            None => Err(Self {
                pending,
                done: OnceCell::new(),
            }),
        }
    }

    /// Cancels the job, as its handle's `cancel` would; [`CancelOutcome::Finished`] once the
    /// result is here.
    pub fn cancel(&self) -> CancelOutcome {
        match &*self.pending.borrow() {
            Some(p) => p.cancel(),
            None => CancelOutcome::Finished,
        }
    }
}

impl<T: Send + 'static> From<Handle<T>> for Promise<Outcome<T>> {
    fn from(handle: Handle<T>) -> Self {
        Self::new(Box::new(handle))
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("ready", &self.done.get().is_some())
            .finish_non_exhaustive()
    }
}
