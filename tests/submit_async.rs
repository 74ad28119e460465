//! submit_async waits for room without blocking its thread: other tasks on a current-thread
//! runtime keep running while it pends.
mod common;
use common::*;
use offthread::Pool;

#[test]
fn a_pending_submit_async_does_not_block_a_current_thread_runtime() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued = pool.submit(|| 0).unwrap(); // the queue is full now
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let submitter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.submit_async(|| 7).await.unwrap().await })
        };
        // Runs on the same (only) runtime thread while the submitter pends: if submit_async
        // blocked the thread, this task could never run and the test would hang.
        let other = tokio::spawn(async move {
            tx.send(()).unwrap();
        });
        rx.await.unwrap();
        other.await.unwrap();
        assert!(!submitter.is_finished());
        gate.open(); // frees the worker; the queue drains; the submitter is woken
        submitter.await.unwrap()
    });
    assert_eq!(v, Ok(7));
    assert_eq!(queued.wait(), Ok(0));
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn dropping_a_pending_submit_async_submits_nothing_and_drops_the_job() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued = pool.submit(|| ()).unwrap();
    let counter = DropCounter::new();
    let token = counter.token();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let fut = pool.submit_async(move || drop(token));
        let timed = tokio::time::timeout(TINY, fut).await;
        assert!(
            timed.is_err(),
            "the queue was full: the submit must still be pending"
        );
    });
    assert_eq!(counter.dropped(), 1);
    gate.open();
    queued.wait().unwrap();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert_eq!(pool.stats().submitted, 2);
}

#[test]
fn many_async_submitters_through_a_tiny_queue_all_get_in() {
    let pool = Pool::builder()
        .max_workers(2)
        .queue_capacity(2)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let sum = rt.block_on(async {
        let tasks: Vec<_> = (0..300u64)
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
    assert_eq!(sum, (0..300).sum::<u64>());
}
