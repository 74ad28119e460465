//! Fault injection through `PoolBuilder::before_spawn`: threads that cannot be created. The pool
//! fails to build with a typed error, or keeps serving with the workers it has; no accepted job
//! hangs.
mod common;
use common::*;
use offthread::{JobError, Pool};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "injected: no more threads")
}

#[test]
fn a_pool_whose_first_thread_cannot_start_is_a_build_error() {
    let err = Pool::builder()
        .before_spawn(|_| Err(refused()))
        .build()
        .unwrap_err();
    assert!(!err.is_config(), "{err}");
    let source = std::error::Error::source(&err).expect("the io error");
    assert!(source.to_string().contains("injected"), "{source}");
    // The monitor thread too.
    let err = Pool::builder()
        .before_spawn(|name| {
            if name.ends_with("monitor") {
                Err(refused())
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap_err();
    assert!(!err.is_config());
}

#[test]
fn when_growth_is_refused_the_pool_serves_every_job_with_the_workers_it_has() {
    // The first worker and the monitor may start; every later worker is refused.
    let workers = Arc::new(AtomicUsize::new(0));
    let w = workers.clone();
    let pool = Pool::builder()
        .max_workers(8)
        .before_spawn(move |name| {
            if name.ends_with("monitor") || w.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(())
            } else {
                Err(refused())
            }
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    // Blocking jobs make the pool want to grow (a stall); every try is refused.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let g = gate.clone();
            pool.submit(move || {
                g.wait();
                i
            })
            .unwrap()
        })
        .collect();
    eventually("growth was attempted and refused", || {
        pool.stats().start_failures > 0
    });
    gate.open();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.wait_timeout(HUGE).ok(), Some(Ok(i)));
    }
    let s = pool.stats();
    assert_eq!(s.workers, 1, "{s:?}");
    pool.shutdown();
    assert_adds_up(pool.stats());
}

#[test]
fn a_nested_wait_gets_its_worker_once_threads_can_start_again() {
    // One worker; the worker lent to a nested wait is refused until the test allows it.
    let allow = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let (a, s) = (allow.clone(), started.clone());
    let pool = Pool::builder()
        .max_workers(1)
        .before_spawn(move |name| {
            if name.ends_with("monitor")
                || s.fetch_add(1, Ordering::SeqCst) == 0
                || a.load(Ordering::SeqCst)
            {
                Ok(())
            } else {
                Err(refused())
            }
        })
        .build()
        .unwrap();
    let p = pool.clone();
    let outer = pool
        .submit(move || p.submit(|| 41).unwrap().wait().map(|v| v + 1))
        .unwrap();
    eventually("the lent worker was refused", || {
        pool.stats().start_failures > 0
    });
    assert!(!outer.is_finished(), "the inner job has no thread yet");
    allow.store(true, Ordering::SeqCst);
    assert_eq!(outer.wait_timeout(HUGE).ok(), Some(Ok(Ok(42))));
}

#[test]
fn random_refusals_under_load_lose_nothing() {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let pool = Pool::builder()
        .max_workers(16)
        .before_spawn(move |name| {
            // The first worker and the monitor start; then every other start is refused.
            let k = c.fetch_add(1, Ordering::SeqCst);
            if name.ends_with("monitor") || k == 0 || k % 2 == 1 {
                Ok(())
            } else {
                Err(refused())
            }
        })
        .build()
        .unwrap();
    let drops = DropCounter::new();
    let handles: Vec<_> = (0..2000u32)
        .map(|i| {
            let token = drops.token();
            pool.submit(move || {
                let _token = token;
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2)); // look stuck
                }
                if i % 97 == 0 {
                    panic!("injected");
                }
                i
            })
            .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let Ok(outcome) = h.wait_timeout(HUGE) else {
            panic!("job {i} hung");
        };
        match outcome {
            Ok(v) => assert_eq!(v as usize, i),
            Err(JobError::Panicked(_)) => assert_eq!(i % 97, 0),
            Err(e) => panic!("{e}"),
        }
    }
    pool.shutdown();
    assert_eq!(drops.dropped(), 2000);
    assert_adds_up(pool.stats());
}

/// A value whose `Drop` blocks until its gate opens, and says when it started blocking.
struct Sticky {
    gate: Gate,
    entered: std::sync::mpsc::Sender<()>,
}

impl Drop for Sticky {
    fn drop(&mut self) {
        let _ = self.entered.send(());
        self.gate.wait();
    }
}

#[test]
fn a_result_whose_drop_blocks_holds_only_its_own_worker() {
    let pool = Pool::builder()
        .min_workers(2)
        .max_workers(2)
        .build()
        .unwrap();
    let (gate, start) = (Gate::new(), Gate::new());
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let sticky = {
        let (gate, start) = (gate.clone(), start.clone());
        pool.submit(move || {
            start.wait();
            Sticky {
                gate,
                entered: entered_tx,
            }
        })
        .unwrap()
    };
    // Detached before it ends: its value is dropped on the worker, which blocks there.
    drop(sticky);
    start.open();
    entered.recv().unwrap();
    // The other worker serves everything else.
    let handles: Vec<_> = (0..200u64)
        .map(|i| pool.submit(move || i * 3).unwrap())
        .collect();
    for (i, h) in (0..200u64).zip(handles) {
        assert_eq!(h.wait(), Ok(i * 3));
    }
    // Shutdown does not abandon the stuck worker: it waits for it (here, up to a limit).
    assert!(pool.shutdown_timeout(Duration::from_millis(20)).is_err());
    gate.open();
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.completed, 201);
    assert_adds_up(stats);
}

#[test]
fn a_cancelled_closure_whose_drop_blocks_blocks_only_the_canceller() {
    // The closure of a job that never runs is dropped by whoever resolves it: here the thread
    // that cancels. The pool's lock is not held meanwhile, so the pool goes on serving.
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .build()
        .unwrap();
    let busy_gate = Gate::new();
    let busy = occupy(&pool, 1, &busy_gate);
    let gate = Gate::new();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let capture = Sticky {
        gate: gate.clone(),
        entered: entered_tx,
    };
    let queued = pool
        .submit(move || -> u8 {
            let _capture = &capture;
            unreachable!("cancelled before it starts")
        })
        .unwrap();
    let canceller = std::thread::spawn(move || {
        let outcome = queued.cancel();
        (outcome, queued.wait())
    });
    entered.recv().unwrap(); // the canceller is inside the closure's Drop
    busy_gate.open();
    for h in busy {
        h.wait().unwrap();
    }
    // The pool serves on while the canceller is stuck in user code.
    assert_eq!(pool.submit(|| 7).unwrap().wait(), Ok(7));
    gate.open();
    let (outcome, result) = canceller.join().unwrap();
    assert_eq!(outcome, offthread::CancelOutcome::Dequeued);
    assert_eq!(result, Err(JobError::Cancelled));
    pool.shutdown();
    assert_adds_up(pool.stats());
}
