//! Delivery to an inbox and to completion callbacks: order, non-blocking drain, wake counts,
//! bounds, panics in user code.
mod common;
use common::*;
use offthread::{CancelOutcome, Inbox, JobError, Pool};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};

#[test]
fn outcomes_arrive_tagged_in_completion_order() {
    // One worker: completion order is submission order.
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let inbox = Inbox::new(100);
    for i in 0..50u32 {
        let _ticket = pool.job(move || i * 2).inbox(&inbox, i).submit().unwrap();
    }
    let mut got = Vec::new();
    while let Some((key, outcome)) = inbox.recv() {
        got.push((key, outcome.unwrap()));
    }
    assert_eq!(got, (0..50).map(|i| (i, i * 2)).collect::<Vec<_>>());
    assert_eq!(inbox.in_flight(), 0);
}

#[test]
fn drain_and_try_recv_never_block() {
    let gate = Gate::new();
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool, 1, &gate);
    let inbox = Inbox::new(4);
    let _ticket = pool.job(|| "late").inbox(&inbox, ()).submit().unwrap();
    // The job is held behind the gate: nothing to take, and nothing blocks.
    assert_eq!(inbox.try_recv(), None);
    assert_eq!(inbox.drain().count(), 0);
    assert_eq!(inbox.recv_timeout(TINY), None);
    assert_eq!((inbox.len(), inbox.in_flight()), (0, 1));
    gate.open();
    assert_eq!(inbox.recv(), Some(((), Ok("late"))));
    assert_eq!(inbox.recv(), None, "nothing in flight: recv does not wait");
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn drain_takes_only_what_was_there_when_it_started() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let inbox = Inbox::new(8);
    for i in 0..3 {
        pool.job(move || i).inbox(&inbox, i).submit().unwrap();
    }
    pool.shutdown(); // every outcome delivered
    let drain = inbox.drain();
    // More outcomes arriving meanwhile would not extend this drain.
    assert_eq!(drain.map(|(k, _)| k).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn the_wake_hook_runs_once_per_batch_and_again_only_after_a_drain() {
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    let inbox = Inbox::with_wake(64, move || {
        w.fetch_add(1, Ordering::SeqCst);
    });
    let wakes = || wakes.load(Ordering::SeqCst);
    // A burst of 20, with a cancelled job among them (a cancellation delivers too).
    let pool = Pool::new();
    for i in 0..20 {
        pool.job(move || i).inbox(&inbox, ()).submit().unwrap();
    }
    let gate = Gate::new();
    let pool1 = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool1, 1, &gate);
    let t = pool1.job(|| 0).inbox(&inbox, ()).submit().unwrap();
    assert_eq!(t.cancel(), CancelOutcome::Dequeued);
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown(); // joins the workers: every delivery and hook has run
    assert_eq!((wakes(), inbox.len()), (1, 21), "one wake for the burst");
    let cancelled = inbox
        .drain()
        .filter(|(_, o)| o == &Err(JobError::Cancelled));
    assert_eq!(cancelled.count(), 1);

    // Emptied: the next delivery wakes again; a partial take does not re-arm it.
    let pool = Pool::new();
    pool.job(|| 1).inbox(&inbox, ()).submit().unwrap();
    pool.job(|| 2).inbox(&inbox, ()).submit().unwrap();
    pool.shutdown();
    assert_eq!(wakes(), 2);
    assert!(inbox.try_recv().is_some()); // one of two taken: not empty
    let pool = Pool::new();
    pool.job(|| 3).inbox(&inbox, ()).submit().unwrap();
    pool.shutdown();
    assert_eq!(wakes(), 2, "the inbox was never emptied");
    assert_eq!(inbox.drain().count(), 2);
    let pool = Pool::new();
    pool.job(|| 4).inbox(&inbox, ()).submit().unwrap();
    pool.shutdown();
    assert_eq!(wakes(), 3);
    assert_eq!(inbox.recv().map(|(_, o)| o), Some(Ok(4)));
}

#[test]
fn a_full_inbox_is_backpressure_and_refused_jobs_come_back() {
    let gate = Gate::new();
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let inbox = Inbox::new(2);
    for i in 0..2 {
        let g = gate.clone();
        pool.job(move || {
            g.wait();
            i
        })
        .inbox(&inbox, i)
        .submit()
        .unwrap();
    }
    // Two outcomes on their way fill it, before anything arrived.
    let refused = pool.job(|| 9).inbox(&inbox, 9).try_submit().unwrap_err();
    assert!(refused.is_full());
    assert_eq!(refused.into_inner()(), 9);
    let refused = pool
        .job(|| 9)
        .inbox(&inbox, 9)
        .submit_timeout(TINY)
        .unwrap_err();
    assert!(refused.is_timeout());
    gate.open();
    assert!(inbox.recv_timeout(HUGE).is_some()); // frees one slot
    pool.job(|| 3).inbox(&inbox, 3).try_submit().unwrap();
    let mut rest: Vec<_> = std::iter::from_fn(|| inbox.recv())
        .map(|(k, _)| k)
        .collect();
    rest.sort();
    assert_eq!(rest.len(), 2);
    assert!(rest.contains(&3));
    assert!(pool.stats().rejected >= 2);
}

struct CountingWaker(AtomicUsize);
impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn submit_async_pends_on_a_full_inbox_and_wakes_when_room_frees() {
    let pool = Pool::new();
    let inbox = Inbox::new(1);
    pool.job(|| 1).inbox(&inbox, 1).submit().unwrap();
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(pool.job(|| 2).inbox(&inbox, 2).submit_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert_eq!(inbox.recv_timeout(HUGE).map(|(k, _)| k), Some(1)); // room
    assert!(
        counter.0.load(Ordering::SeqCst) >= 1,
        "the waiter was woken"
    );
    let Poll::Ready(Ok(_ticket)) = fut.as_mut().poll(&mut cx) else {
        panic!("room was free");
    };
    assert_eq!(inbox.recv_timeout(HUGE), Some((2, Ok(2))));
    // A dropped pending future gives its reserved slot back.
    pool.job(|| 3).inbox(&inbox, 3).submit().unwrap();
    let fut = pool.job(|| 4).inbox(&inbox, 4).submit_async();
    drop(fut);
    assert_eq!(inbox.recv_timeout(HUGE), Some((3, Ok(3))));
    assert_eq!(inbox.in_flight(), 0);
}

#[test]
fn a_panicking_wake_hook_is_counted_and_the_outcome_still_arrives() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let inbox = Inbox::with_wake(8, || panic!("repaint failed"));
    for i in 0..3 {
        pool.job(move || i).inbox(&inbox, i).submit().unwrap();
    }
    pool.shutdown();
    assert_eq!(inbox.drain().count(), 3);
    assert_eq!(pool.stats().callback_panics, 1, "one wake for the three");
    assert_eq!(pool.stats().completed, 3);
}

#[test]
fn completion_callbacks_run_on_the_worker_with_every_kind_of_outcome() {
    let pool = Pool::builder().thread_name("cb").build().unwrap();
    let (tx, rx) = mpsc::channel();
    let t = tx.clone();
    pool.job(|| 5)
        .on_complete(move |o| {
            let name = std::thread::current().name().map(str::to_owned);
            t.send((o.map_err(|e| e.to_string()), name)).unwrap();
        })
        .submit()
        .unwrap();
    let (outcome, thread) = rx.recv_timeout(HUGE).unwrap();
    assert_eq!(outcome, Ok(5));
    assert!(thread.unwrap().starts_with("cb-"));
    let t = tx.clone();
    pool.job(|| -> i32 { panic!("boom") })
        .on_complete(move |o| t.send((o.map_err(|e| e.to_string()), None)).unwrap())
        .submit()
        .unwrap();
    let (outcome, _) = rx.recv_timeout(HUGE).unwrap();
    assert!(outcome.unwrap_err().contains("boom"));
}

#[test]
fn a_panicking_callback_is_counted_and_never_kills_the_worker() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    for _ in 0..10 {
        pool.job(|| 1)
            .on_complete(|_| panic!("callback bug"))
            .submit()
            .unwrap();
    }
    assert_eq!(pool.submit(|| "alive").unwrap().wait(), Ok("alive"));
    pool.shutdown();
    let s = pool.stats();
    assert_eq!(s.callback_panics, 10);
    assert_eq!(s.completed, 11);
    assert_eq!(s.start_failures, 0);
    assert_adds_up(s);
}

#[test]
fn shutdown_now_delivers_shut_down_to_inboxes_and_callbacks() {
    let gate = Gate::new();
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool, 1, &gate);
    let inbox = Inbox::new(4);
    let (tx, rx) = mpsc::channel();
    pool.job(|| 1).inbox(&inbox, "a").submit().unwrap();
    pool.job(|| 2)
        .on_complete(move |o| tx.send(o).unwrap())
        .submit()
        .unwrap();
    let g = gate.clone();
    let closer = std::thread::spawn({
        let pool = pool.clone();
        move || pool.shutdown_now()
    });
    assert_eq!(
        inbox.recv_timeout(HUGE),
        Some(("a", Err(JobError::ShutDown)))
    );
    assert_eq!(rx.recv_timeout(HUGE).unwrap(), Err(JobError::ShutDown));
    g.open();
    closer.join().unwrap();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn a_blocked_recv_returns_none_when_the_last_reservation_is_given_back() {
    let gate = Gate::new();
    let pool = one_worker(1);
    let busy = occupy(&pool, 1, &gate);
    let filler = pool.submit(|| ()).unwrap(); // the queue is full
    let inbox: Inbox<u32> = Inbox::new(4);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    // The future reserves its inbox slot, then pends on the full queue: one outcome "on its way".
    let mut fut = Box::pin(pool.job(|| 1).inbox(&inbox, ()).submit_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert_eq!(inbox.in_flight(), 1);
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let receiver = std::thread::spawn({
        let inbox = inbox.clone();
        move || {
            ready_tx.send(()).unwrap();
            tx.send(inbox.recv().is_none()).unwrap();
        }
    });
    ready.recv().unwrap();
    // Give the receiver time to block in `recv` (if it has not, it returns `None` at once and
    // the test still holds; if it has, only the wake-up on release can end its wait).
    for _ in 0..1000 {
        std::thread::yield_now();
    }
    drop(fut); // the reservation comes back: nothing is on its way
    assert_eq!(rx.recv_timeout(HUGE), Ok(true), "recv hung");
    receiver.join().unwrap();
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    filler.wait().unwrap();
}
