//! Job options: priority order, the background cap, aging, start deadlines, cancel-on-drop,
//! names. Single-worker pools make the order deterministic; gates hold workers; no sleeps.
mod common;
use common::*;
use offthread::{CancelOutcome, JobError, Pool, Priority};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

/// A one-worker pool with its worker held by `gate`.
fn held_pool(gate: &Gate) -> (Pool, Vec<offthread::Handle<()>>) {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool, 1, gate);
    (pool, busy)
}

#[test]
fn interactive_runs_before_normal_before_background_fifo_within_each() {
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let order = Arc::new(Mutex::new(Vec::new()));
    let jobs = [
        ("b1", Priority::Background),
        ("n1", Priority::Normal),
        ("i1", Priority::Interactive),
        ("n2", Priority::Normal),
        ("b2", Priority::Background),
        ("i2", Priority::Interactive),
    ];
    let handles: Vec<_> = jobs
        .iter()
        .map(|&(name, p)| {
            let order = order.clone();
            pool.job(move || order.lock().unwrap().push(name))
                .priority(p)
                .submit()
                .unwrap()
        })
        .collect();
    gate.open();
    for h in busy.into_iter().chain(handles) {
        h.wait().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["i1", "i2", "n1", "n2", "b1", "b2"]);
}

#[test]
fn a_waiting_normal_job_starts_after_at_most_16_interactive_ones() {
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    let push = |name: &'static str, p: Priority, handles: &mut Vec<_>| {
        let order = order.clone();
        handles.push(
            pool.job(move || order.lock().unwrap().push(name))
                .priority(p)
                .submit()
                .unwrap(),
        );
    };
    push("normal", Priority::Normal, &mut handles);
    for _ in 0..40 {
        push("interactive", Priority::Interactive, &mut handles);
    }
    gate.open();
    for h in busy.into_iter().chain(handles) {
        h.wait().unwrap();
    }
    let order = order.lock().unwrap();
    assert_eq!(order.iter().position(|&n| n == "normal"), Some(16));
}

#[test]
fn background_jobs_never_take_every_worker_and_interactive_work_gets_through() {
    // max_workers 3: background may hold 2; the third worker serves the rest.
    let pool = Pool::builder().max_workers(3).build().unwrap();
    let gate = Gate::new();
    let started = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let background: Vec<_> = (0..5)
        .map(|_| {
            let (gate, started, tx) = (gate.clone(), started.clone(), tx.clone());
            pool.job(move || {
                started.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
                gate.wait();
            })
            .priority(Priority::Background)
            .submit()
            .unwrap()
        })
        .collect();
    rx.recv_timeout(HUGE).unwrap();
    rx.recv_timeout(HUGE).unwrap();
    // Every background job the cap allows is running; the interactive job must still run.
    let urgent = pool
        .job(|| "done")
        .priority(Priority::Interactive)
        .submit()
        .unwrap();
    assert_eq!(urgent.wait_timeout(HUGE).ok(), Some(Ok("done")));
    let normal = pool.submit(|| "also").unwrap();
    assert_eq!(normal.wait_timeout(HUGE).ok(), Some(Ok("also")));
    assert_eq!(started.load(Ordering::SeqCst), 2, "the cap held");
    assert_eq!(pool.stats().queued, 3);
    gate.open();
    for h in background {
        h.wait().unwrap();
    }
    assert_eq!(started.load(Ordering::SeqCst), 5);
    pool.shutdown();
    assert_adds_up(pool.stats());
}

#[test]
fn background_workers_is_validated() {
    for bad in [0, 5] {
        let err = Pool::builder()
            .max_workers(4)
            .background_workers(bad)
            .build()
            .unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("background_workers"), "{err}");
    }
    // A one-worker pool still runs background work (the cap is at least 1).
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let h = pool
        .job(|| 1)
        .priority(Priority::Background)
        .submit()
        .unwrap();
    assert_eq!(h.wait(), Ok(1));
}

#[test]
fn a_job_still_queued_at_its_start_deadline_expires_on_time_and_never_runs() {
    let gate = Gate::new();
    let pool = one_worker(1);
    let busy = occupy(&pool, 1, &gate);
    let ran = Arc::new(AtomicBool::new(false));
    let counter = DropCounter::new();
    let (r, token) = (ran.clone(), counter.token());
    let late = pool
        .job(move || {
            r.store(true, Ordering::SeqCst);
            drop(token);
        })
        .start_timeout(TINY)
        .submit()
        .unwrap();
    // The worker is still held: only the deadline can resolve the job, and it does.
    assert_eq!(late.wait_timeout(HUGE).ok(), Some(Err(JobError::Expired)));
    assert_eq!(counter.dropped(), 1, "its closure was dropped");
    assert!(pool.try_submit(|| ()).is_ok(), "its slot is free");
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
    let s = pool.stats();
    assert_eq!(s.expired, 1);
    assert_adds_up(s);
}

#[test]
fn a_job_that_starts_before_its_deadline_runs_to_its_end() {
    let pool = Pool::new();
    let h = pool
        .job(|| 7)
        .start_deadline(Instant::now() + HUGE)
        .submit()
        .unwrap();
    assert_eq!(h.wait(), Ok(7));
    // A deadline already passed on submit: expires even with idle workers about.
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let h = pool
        .job(|| 8)
        .start_deadline(Instant::now())
        .submit()
        .unwrap();
    assert_eq!(h.wait(), Err(JobError::Expired));
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn many_deadlines_all_expire_while_the_worker_is_held() {
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let handles: Vec<_> = (0..50u32)
        .map(|i| {
            pool.job(move || i)
                .start_timeout(TINY * (50 - i))
                .submit()
                .unwrap()
        })
        .collect();
    for h in handles {
        assert_eq!(h.wait_timeout(HUGE).ok(), Some(Err(JobError::Expired)));
    }
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(pool.stats().expired, 50);
}

#[test]
fn dropping_a_cancel_on_drop_handle_cancels_a_queued_job() {
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let counter = DropCounter::new();
    let token = counter.token();
    let h = pool
        .job(move || drop(token))
        .cancel_on_drop()
        .submit()
        .unwrap();
    drop(h);
    assert_eq!(counter.dropped(), 1, "dropped at once, never run");
    assert_eq!(pool.stats().cancelled, 1);
    assert_eq!(pool.stats().queued, 0);
    // The same through the future of `.await` and through a ticket.
    let token = counter.token();
    let fut = std::future::IntoFuture::into_future(
        pool.job(move || drop(token))
            .cancel_on_drop()
            .submit()
            .unwrap(),
    );
    drop(fut);
    let token = counter.token();
    let ticket = pool
        .job(move || drop(token))
        .cancel_on_drop()
        .on_complete(|_| ())
        .submit()
        .unwrap();
    drop(ticket);
    assert_eq!(counter.dropped(), 3);
    assert_eq!(pool.stats().cancelled, 3);
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert_adds_up(pool.stats());
}

#[test]
fn dropping_a_cancel_on_drop_handle_leaves_a_running_job_alone() {
    let pool = Pool::new();
    let gate = Gate::new();
    let (started_tx, started) = mpsc::channel();
    let (seen_tx, seen) = mpsc::channel();
    let g = gate.clone();
    let h = pool
        .job(move || {
            started_tx.send(()).unwrap();
            g.wait();
            seen_tx.send(offthread::is_cancelled()).unwrap();
        })
        .cancel_on_drop()
        .submit()
        .unwrap();
    started.recv_timeout(HUGE).unwrap();
    drop(h);
    gate.open();
    assert_eq!(seen.recv_timeout(HUGE), Ok(false));
    pool.shutdown();
    assert_eq!(pool.stats().completed, 1);
}

#[test]
fn without_cancel_on_drop_a_dropped_handle_detaches() {
    let gate = Gate::new();
    let (pool, busy) = held_pool(&gate);
    let (tx, rx) = mpsc::channel();
    drop(pool.job(move || tx.send(1).unwrap()).submit().unwrap());
    gate.open();
    assert_eq!(rx.recv_timeout(HUGE), Ok(1));
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn named_jobs_show_while_they_run() {
    let pool = Pool::new();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = ["scan", "thumbs"]
        .into_iter()
        .map(|name| {
            let (gate, tx) = (gate.clone(), tx.clone());
            pool.job(move || {
                tx.send(()).unwrap();
                gate.wait();
            })
            .name(name)
            .submit()
            .unwrap()
        })
        .collect();
    let unnamed = occupy(&pool, 1, &gate);
    rx.recv_timeout(HUGE).unwrap();
    rx.recv_timeout(HUGE).unwrap();
    let mut names: Vec<_> = pool
        .running_jobs()
        .into_iter()
        .map(|j| j.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["scan", "thumbs"]);
    gate.open();
    for h in handles.into_iter().chain(unnamed) {
        h.wait().unwrap();
    }
    pool.shutdown();
    assert!(pool.running_jobs().is_empty());
}

#[test]
fn the_builder_takes_every_submission_call_and_hands_refused_jobs_back() {
    let gate = Gate::new();
    let pool = one_worker(1);
    let busy = occupy(&pool, 1, &gate);
    let queued = pool.job(|| 1).try_submit().unwrap();
    let full = pool.job(|| 2).try_submit().unwrap_err();
    assert!(full.is_full());
    assert_eq!(full.into_inner()(), 2);
    let timed_out = pool.job(|| 3).submit_timeout(TINY).unwrap_err();
    assert!(timed_out.is_timeout());
    let timed_out = pool.job(|| 4).submit_deadline(Instant::now()).unwrap_err();
    assert_eq!(timed_out.into_inner()(), 4);
    assert_eq!(queued.cancel(), CancelOutcome::Dequeued);
    let h = pollster::block_on(pool.job(|| 5).submit_async()).unwrap();
    gate.open();
    assert_eq!(h.wait(), Ok(5));
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert!(pool.job(|| 6).submit().unwrap_err().into_inner()() == 6);
}

#[test]
fn state_pool_jobs_take_options_too() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| 10u32)
        .unwrap();
    let h = pool
        .job(|n: &mut u32| *n + 1)
        .priority(Priority::Interactive)
        .name("stateful")
        .submit()
        .unwrap();
    assert_eq!(h.wait(), Ok(11));
}

#[test]
fn a_dropped_pool_is_freed_even_with_deadlines_left_behind() {
    // The init closure lives as long as the pool's shared state: its token drops with it.
    let counter = DropCounter::new();
    let token = counter.token();
    let pool = Pool::builder()
        .build_with_state(move || {
            let _keep = &token;
        })
        .unwrap();
    let h = pool
        .job(|_: &mut ()| 1)
        .start_timeout(HUGE * 10) // its timer outlives the job by far
        .submit()
        .unwrap();
    assert_eq!(h.wait(), Ok(1));
    pool.shutdown();
    drop(pool);
    eventually("the pool's state was freed", || counter.dropped() == 1);
}
