//! `Promise`: a result looked at by reference, each frame, without being taken.
mod common;
use common::*;
use offthread::{CancelOutcome, JobError, Pool};

#[test]
fn a_promise_is_none_until_the_job_ends_then_the_same_result_every_look() {
    watchdog("promise", || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let gate = Gate::new();
        let g = gate.clone();
        let mut p = pool
            .submit(move || {
                g.wait();
                vec![1, 2, 3]
            })
            .unwrap()
            .into_promise();
        assert!(p.ready().is_none());
        gate.open();
        eventually("the job ends", || p.ready().is_some());
        assert_eq!(p.ready(), Some(&Ok(vec![1, 2, 3])));
        assert_eq!(p.ready(), Some(&Ok(vec![1, 2, 3])), "looked at, not taken");
        p.ready_mut().unwrap().as_mut().unwrap().push(4);
        assert_eq!(p.cancel(), CancelOutcome::Finished);
        assert_eq!(p.try_take().unwrap(), Ok(vec![1, 2, 3, 4]));
    });
}

#[test]
fn a_promise_cancels_its_job_and_hands_itself_back_until_ready() {
    watchdog("promise cancel", || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let gate = Gate::new();
        let busy = occupy(&pool, 1, &gate);
        let p = pool.submit(|| 5).unwrap().into_promise();
        let p = p.try_take().unwrap_err();
        assert_eq!(p.cancel(), CancelOutcome::Dequeued);
        assert_eq!(p.ready(), Some(&Err(JobError::Cancelled)));
        gate.open();
        busy.into_iter().for_each(|h| h.wait().unwrap());
    });
}

#[cfg(any(feature = "sqlite", feature = "sqlite-system"))]
#[test]
fn a_database_call_becomes_a_promise() {
    watchdog("call promise", || {
        let db = offthread::sqlite::Db::open_in_memory().unwrap();
        let p = db.query_row::<i64, _>("SELECT 40 + 2", ()).into_promise();
        eventually("the read ends", || p.ready().is_some());
        assert!(matches!(p.ready(), Some(Ok(42))));
    });
}
