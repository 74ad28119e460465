//! Per-worker state: built on the worker thread, may be !Send, jobs get &mut S; broadcast.
mod common;
use common::*;
use offthread::Pool;
use std::cell::RefCell;
use std::rc::Rc;

/// A client that must never leave the thread that made it.
struct Legacy {
    made_on: std::thread::ThreadId,
    calls: u32,
    _not_send: Rc<()>,
}

impl Legacy {
    fn call(&mut self) -> u32 {
        assert_eq!(
            std::thread::current().id(),
            self.made_on,
            "client crossed threads"
        );
        self.calls += 1;
        self.calls
    }
}

#[test]
fn a_not_send_state_is_built_and_used_on_its_own_worker() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| Legacy {
            made_on: std::thread::current().id(),
            calls: 0,
            _not_send: Rc::new(()),
        })
        .unwrap();
    let calls: Vec<u32> = (0..5)
        .map(|_| pool.submit(|c: &mut Legacy| c.call()).unwrap())
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(calls, [1, 2, 3, 4, 5]);
}

#[test]
fn broadcast_reaches_every_running_worker_once() {
    let pool = Pool::builder()
        .min_workers(3)
        .max_workers(3)
        .build_with_state(|| RefCell::new(0u32))
        .unwrap();
    let hs = pool.broadcast(|n: &mut RefCell<u32>| {
        *n.borrow_mut() += 10;
        std::thread::current().id()
    });
    assert_eq!(hs.len(), 3);
    let mut ids: Vec<_> = hs.into_iter().map(|h| h.wait().unwrap()).collect();
    ids.sort_by_key(|id| format!("{id:?}"));
    ids.dedup();
    assert_eq!(ids.len(), 3, "one run per distinct worker");
    let totals = pool.broadcast(|n: &mut RefCell<u32>| *n.borrow());
    assert!(totals.into_iter().all(|h| h.wait() == Ok(10)));
    pool.shutdown();
    assert!(pool.broadcast(|_: &mut RefCell<u32>| ()).is_empty());
    assert_adds_up(pool.stats());
}

#[test]
fn broadcast_jobs_can_be_cancelled_and_shut_down() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| ())
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let busy = pool
        .submit(move |_: &mut ()| {
            tx.send(()).unwrap();
            g.wait()
        })
        .unwrap();
    rx.recv().unwrap();
    let mut hs = pool.broadcast(|_: &mut ()| 1);
    let mut more = pool.broadcast(|_: &mut ()| 2);
    assert_eq!(hs[0].cancel(), offthread::CancelOutcome::Dequeued);
    assert!(hs.pop().unwrap().wait().unwrap_err().is_cancelled());
    let closer = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown_now())
    };
    assert!(more.pop().unwrap().wait().unwrap_err().is_shut_down());
    gate.open();
    busy.wait().unwrap();
    closer.join().unwrap();
    assert_adds_up(pool.stats());
}

#[test]
fn a_panicking_init_is_a_build_error_not_a_dead_pool() {
    let err = Pool::builder()
        .min_workers(2)
        .max_workers(2)
        .build_with_state(|| -> u8 { panic!("cannot connect") })
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[test]
fn a_later_worker_whose_init_panics_is_counted_and_the_pool_goes_on() {
    let made = std::sync::atomic::AtomicUsize::new(0);
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(4)
        .build_with_state(move || {
            if made.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                panic!("only one connection allowed");
            }
        })
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let first = pool.submit(move |_: &mut ()| g.wait()).unwrap();
    // More jobs than workers: the pool tries to grow, the new workers fail to start.
    let rest: Vec<_> = (0..3)
        .map(|i| pool.submit(move |_: &mut ()| i).unwrap())
        .collect();
    eventually("growth attempts fail", || pool.stats().start_failures > 0);
    gate.open();
    first.wait().unwrap();
    let vals: Vec<_> = rest.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(vals, [0, 1, 2]);
}
