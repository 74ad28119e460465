//! Shutdown: graceful, now, with timeouts; idempotent; from any clone; from inside a job;
//! dropping the last Pool neither blocks nor loses jobs.
mod common;
use common::*;
use offthread::{JobError, Pool, ShutdownTimeout};
use std::sync::mpsc;

#[test]
fn shutdown_runs_what_is_queued_then_joins() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    let closer = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown())
    };
    gate.open(); // whether or not the closer has closed intake yet, all 11 must run
    closer.join().unwrap();
    for (i, h) in queued.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(i));
    }
    busy.into_iter().for_each(|h| h.wait().unwrap());
    let s = pool.stats();
    assert_eq!((s.workers, s.completed, s.queued), (0, 11, 0));
}

#[test]
fn shutdown_now_resolves_queued_jobs_shut_down_without_running_them() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let counter = DropCounter::new();
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let t = counter.token();
            pool.submit(move || -> () {
                drop(t);
                unreachable!("must not run")
            })
            .unwrap()
        })
        .collect();
    let closer = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown_now())
    };
    for h in queued {
        assert_eq!(h.wait(), Err(JobError::ShutDown));
    }
    assert_eq!(
        counter.dropped(),
        5,
        "queued closures are dropped, not leaked"
    );
    gate.open(); // the running job still finishes with its value
    busy.into_iter().for_each(|h| assert_eq!(h.wait(), Ok(())));
    closer.join().unwrap();
    let s = pool.stats();
    assert_eq!((s.shut_down, s.completed, s.workers), (5, 1, 0));
    assert_adds_up(s);
}

#[test]
fn shutdown_timeout_reports_what_is_still_running() {
    let pool = Pool::builder()
        .max_workers(2)
        .min_workers(2)
        .build()
        .unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 2, &gate);
    let queued = pool.submit(|| ()).unwrap();
    assert_eq!(
        pool.shutdown_timeout(TINY),
        Err(ShutdownTimeout {
            running: 2,
            queued: 1
        })
    );
    assert_eq!(
        pool.shutdown_now_timeout(TINY),
        Err(ShutdownTimeout {
            running: 2,
            queued: 0
        })
    );
    assert_eq!(
        pool.shutdown_now_deadline(std::time::Instant::now() + TINY),
        Err(ShutdownTimeout {
            running: 2,
            queued: 0
        })
    );
    assert_eq!(queued.wait(), Err(JobError::ShutDown));
    gate.open();
    assert_eq!(
        pool.shutdown_now_deadline(std::time::Instant::now() + HUGE),
        Ok(())
    );
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn shutdown_is_idempotent_and_works_from_any_clone() {
    let pool = Pool::new();
    let other = pool.clone();
    let h = pool.submit(|| 1).unwrap();
    other.shutdown();
    pool.shutdown();
    pool.shutdown_now();
    assert_eq!(pool.shutdown_deadline(std::time::Instant::now()), Ok(()));
    assert_eq!(h.wait(), Ok(1));
    assert!(pool.submit(|| 2).is_err());
}

#[test]
fn shutdown_from_inside_a_job_does_not_wait_for_itself() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let inner = pool.clone();
    let h = pool
        .submit(move || {
            inner.shutdown();
            "returned"
        })
        .unwrap();
    assert_eq!(h.wait(), Ok("returned"));
    pool.shutdown();
    assert_eq!(pool.stats().workers, 0);
}

#[test]
fn dropping_the_last_pool_does_not_block_and_queued_jobs_still_run() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued: Vec<_> = (0..3).map(|i| pool.submit(move || i).unwrap()).collect();
    drop(pool); // returns at once although a job is blocked and three are queued
    gate.open();
    for (i, h) in queued.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(i));
    }
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn workers_exit_after_the_last_pool_is_dropped() {
    let (stopped_tx, stopped) = mpsc::channel();
    let stopped_tx = std::sync::Mutex::new(stopped_tx);
    let pool = Pool::builder()
        .min_workers(3)
        .max_workers(3)
        .on_thread_stop(move || stopped_tx.lock().unwrap().send(()).unwrap())
        .build()
        .unwrap();
    drop(pool);
    for _ in 0..3 {
        stopped.recv_timeout(HUGE).expect("every worker stops");
    }
}
