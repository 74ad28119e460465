//! Handle: wait, wait_timeout/deadline, try_wait (hand the handle back), is_finished, detach on
//! drop, and `.await` under tokio (current-thread and multi-thread) and pollster.
mod common;
use common::*;
use offthread::{Handle, Pool};
use std::future::Future;
use std::time::Instant;

#[test]
fn try_wait_and_wait_timeout_hand_the_handle_back_until_ready() {
    let pool = Pool::new();
    let gate = Gate::new();
    let g = gate.clone();
    let h = pool
        .submit(move || {
            g.wait();
            "done"
        })
        .unwrap();
    let h = h.try_wait().unwrap_err();
    assert!(!h.is_finished());
    let h = h.wait_timeout(TINY).unwrap_err();
    let h = h.wait_deadline(Instant::now()).unwrap_err();
    gate.open();
    assert_eq!(h.wait_timeout(HUGE).unwrap(), Ok("done"));
}

#[test]
fn is_finished_turns_true_and_try_wait_then_returns_at_once() {
    let pool = Pool::new();
    let h = pool.submit(|| 3).unwrap();
    eventually("job finishes", || h.is_finished());
    assert_eq!(h.try_wait().unwrap(), Ok(3));
}

#[test]
fn dropping_a_handle_detaches_the_job_and_drops_its_value_on_the_worker() {
    let pool = Pool::new();
    let counter = DropCounter::new();
    let (ran_tx, ran) = std::sync::mpsc::channel();
    let token = counter.token();
    drop(
        pool.submit(move || {
            ran_tx.send(()).unwrap();
            token
        })
        .unwrap(),
    );
    ran.recv_timeout(HUGE).expect("a detached job still runs");
    pool.shutdown();
    assert_eq!(
        counter.dropped(),
        1,
        "the unclaimed value is dropped exactly once"
    );
    assert_eq!(pool.stats().completed, 1);
}

#[test]
fn dropping_a_handle_whose_value_arrived_drops_the_value_there_and_then() {
    let pool = Pool::new();
    let counter = DropCounter::new();
    let token = counter.token();
    let h = pool.submit(move || token).unwrap();
    eventually("job finishes", || h.is_finished());
    assert_eq!(counter.dropped(), 0, "the value waits for its handle");
    drop(h);
    assert_eq!(
        counter.dropped(),
        1,
        "dropped with the handle, by this thread"
    );
}

#[test]
fn a_future_dropped_while_pending_detaches_its_job() {
    watchdog("pending future dropped", || {
        let pool = Pool::new();
        let counter = DropCounter::new();
        let gate = Gate::new();
        let (token, g) = (counter.token(), gate.clone());
        let mut fut = std::future::IntoFuture::into_future(
            pool.submit(move || {
                g.wait();
                token
            })
            .unwrap(),
        );
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::Pin::new(&mut fut).poll(&mut cx).is_pending());
        drop(fut);
        gate.open();
        pool.shutdown();
        assert_eq!(counter.dropped(), 1, "the value dies on the worker, once");
        assert_eq!(pool.stats().completed, 1);
    });
}

#[test]
fn await_under_tokio_current_thread() {
    let pool = Pool::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = rt.block_on(async { pool.submit(|| 11).unwrap().await });
    assert_eq!(v, Ok(11));
}

#[test]
fn await_under_tokio_multi_thread_from_many_tasks() {
    let pool = Pool::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let sum = rt.block_on(async {
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.submit_async(move || i).await.unwrap().await })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap().unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..200).sum::<u64>());
}

#[test]
fn await_under_pollster_and_errors_arrive_too() {
    let pool = Pool::new();
    assert_eq!(pollster::block_on(pool.submit(|| 'x').unwrap()), Ok('x'));
    let err = pollster::block_on(pool.submit(|| -> u8 { panic!("async boom") }).unwrap());
    assert_eq!(err.unwrap_err().panic_message(), Some("async boom"));
}

#[test]
fn a_future_can_cancel_its_queued_job() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let fut = std::future::IntoFuture::into_future(pool.submit(|| 1).unwrap());
    assert_eq!(fut.cancel(), offthread::CancelOutcome::Dequeued);
    assert!(pollster::block_on(fut).unwrap_err().is_cancelled());
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

// Compile-time facts: handles and pools cross threads; a handle is not Sync (one receiver).
#[test]
fn send_and_sync_facts() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Handle<u8>>();
    sync::<Handle<u8>>();
    send::<offthread::JobFuture<u8>>();
    send::<Pool>();
    sync::<Pool>();
    send::<offthread::StatePool<std::rc::Rc<u8>>>(); // a !Send state stays on its worker
    sync::<offthread::StatePool<std::rc::Rc<u8>>>();
    send::<offthread::JobError>();
    sync::<offthread::JobError>();
    send::<offthread::BuildError>();
    sync::<offthread::BuildError>();
}
