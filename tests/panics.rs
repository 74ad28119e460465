//! Panics stay inside the job: the message comes back, the worker survives, the counts add up.
mod common;
use common::*;
use offthread::{JobError, Pool};

#[test]
fn a_panic_comes_back_with_its_message_and_the_worker_survives() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let e = pool
        .submit(|| -> () { panic!("str payload") })
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(e, JobError::Panicked("str payload".into()));
    assert_eq!(e.to_string(), "job panicked: str payload");
    let n = 7;
    let e = pool
        .submit(move || -> () { panic!("formatted {n}") })
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(e.panic_message(), Some("formatted 7"));
    let e = pool
        .submit(|| -> () { std::panic::panic_any(42u32) })
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(e.is_panic());
    // Same single worker, still serving:
    assert_eq!(pool.submit(|| "alive").unwrap().wait(), Ok("alive"));
    pool.shutdown();
    let s = pool.stats();
    assert_eq!((s.panicked, s.completed, s.workers), (3, 1, 0));
    assert_adds_up(s);
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop of an unclaimed result");
    }
}

#[test]
fn a_panicking_drop_of_a_detached_result_does_not_kill_the_worker() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    // The value must be made after the handle is gone, so its drop happens on the worker.
    drop(
        pool.submit(move || {
            g.wait();
            PanicOnDrop
        })
        .unwrap(),
    );
    gate.open();
    assert_eq!(pool.submit(|| 1).unwrap().wait(), Ok(1));
}

#[test]
fn a_panicking_drop_of_a_cancelled_closure_does_not_kill_the_canceller() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let bomb = PanicOnDrop;
    let h = pool.submit(move || drop(bomb)).unwrap();
    assert_eq!(h.cancel(), offthread::CancelOutcome::Dequeued);
    assert_eq!(h.wait(), Err(JobError::Cancelled));
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn a_panicking_start_hook_is_a_build_error() {
    let err = Pool::builder()
        .on_thread_start(|| panic!("hook failed"))
        .build()
        .unwrap_err();
    assert!(!err.is_config());
    assert!(err.to_string().contains("hook failed"), "{err}");
}

#[test]
fn a_panicking_stop_hook_is_caught() {
    let pool = Pool::builder()
        .on_thread_stop(|| panic!("stop hook"))
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 1).unwrap().wait(), Ok(1));
    pool.shutdown(); // returns: the worker was counted out despite the panic
    assert_eq!(pool.stats().workers, 0);
}
