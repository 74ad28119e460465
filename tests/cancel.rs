//! Cancellation: a queued job never runs and frees its slot at once; a running job sees the
//! flag; a finished one is untouched.
mod common;
use common::*;
use offthread::{CancelOutcome, JobError, Pool, is_cancelled};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

#[test]
fn cancelling_a_queued_job_frees_its_slot_at_once_and_it_never_runs() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let ran = Arc::new(AtomicBool::new(false));
    let counter = DropCounter::new();
    let (r, token) = (ran.clone(), counter.token());
    let queued = pool
        .submit(move || {
            r.store(true, Ordering::SeqCst);
            drop(token);
        })
        .unwrap();
    assert!(pool.try_submit(|| ()).unwrap_err().is_full());
    assert_eq!(queued.cancel(), CancelOutcome::Dequeued);
    assert_eq!(
        counter.dropped(),
        1,
        "the cancelled closure is dropped at once"
    );
    // The slot is free now, while the worker is still busy.
    let next = pool.try_submit(|| 5).expect("cancel freed the slot");
    assert_eq!(
        queued.cancel(),
        CancelOutcome::Finished,
        "a second cancel changes nothing"
    );
    assert_eq!(queued.wait(), Err(JobError::Cancelled));
    gate.open();
    assert_eq!(next.wait(), Ok(5));
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
    let s = pool.stats();
    assert_eq!(s.cancelled, 1);
    assert_adds_up(s);
}

#[test]
fn cancelling_a_running_job_raises_its_flag() {
    let pool = Pool::new();
    let (started_tx, started) = mpsc::channel();
    let h = pool
        .submit(move || {
            assert!(!is_cancelled());
            started_tx.send(()).unwrap();
            while !is_cancelled() {
                std::thread::yield_now();
            }
            "stopped"
        })
        .unwrap();
    started.recv().unwrap();
    assert_eq!(h.cancel(), CancelOutcome::Requested);
    assert_eq!(h.cancel(), CancelOutcome::Requested);
    assert_eq!(h.wait(), Ok("stopped"));
}

#[test]
fn the_flag_belongs_to_one_job_only() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let (started_tx, started) = mpsc::channel();
    let h = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            while !is_cancelled() {
                std::thread::yield_now();
            }
        })
        .unwrap();
    started.recv().unwrap();
    h.cancel();
    h.wait().unwrap();
    // The next job on the same worker starts with a clear flag.
    assert_eq!(pool.submit(is_cancelled).unwrap().wait(), Ok(false));
}

#[test]
fn cancelling_a_finished_job_changes_nothing() {
    let pool = Pool::new();
    let h = pool.submit(|| 1).unwrap();
    eventually("job finishes", || h.is_finished());
    assert_eq!(h.cancel(), CancelOutcome::Finished);
    assert_eq!(h.wait(), Ok(1));
}

#[test]
fn many_cancels_keep_the_queue_bounded_and_the_rest_in_order() {
    // Submit and cancel far more jobs than the capacity while the worker is held: tombstones
    // must be swept, and the survivors still run in submission order.
    let pool = one_worker(8);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let (tx, rx) = mpsc::channel();
    let keep = pool
        .submit({
            let tx = tx.clone();
            move || tx.send(0).unwrap()
        })
        .unwrap();
    for _ in 0..10_000 {
        let h = pool
            .try_submit(|| unreachable!())
            .expect("cancelled jobs free their slots");
        assert_eq!(h.cancel(), CancelOutcome::Dequeued);
    }
    let last = pool.submit(move || tx.send(1).unwrap()).unwrap();
    gate.open();
    keep.wait().unwrap();
    last.wait().unwrap();
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1]);
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    let s = pool.stats();
    assert_eq!(s.cancelled, 10_000);
    assert_adds_up(s);
}

#[test]
fn racing_cancel_against_start_resolves_each_job_exactly_once() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut dequeued = 0;
    for _ in 0..2000 {
        let r = runs.clone();
        let h = pool
            .submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        match h.cancel() {
            CancelOutcome::Dequeued => {
                dequeued += 1;
                assert_eq!(h.wait(), Err(JobError::Cancelled));
            }
            CancelOutcome::Requested | CancelOutcome::Finished => assert_eq!(h.wait(), Ok(())),
            _ => unreachable!(),
        }
    }
    pool.shutdown();
    assert_eq!(runs.load(Ordering::SeqCst), 2000 - dequeued);
    assert_eq!(pool.stats().cancelled, dequeued as u64);
}
