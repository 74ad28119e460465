//! Nothing waits forever: every blocking call made on one of a pool's own threads (a job, a
//! completion callback, a wake hook, the `Drop` of a detached result, the monitor running an
//! expired job's callback) either gets a lent worker or is refused at once. Each test runs
//! under a watchdog, so a hang fails it.
mod common;
use common::*;
use offthread::{Inbox, JobError, Pool, Priority};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A background job waiting on a background job of its own pool completes: the waiting job
/// stops counting against the background limit while it waits.
#[test]
fn a_background_job_waiting_on_a_background_job_completes() {
    for max in [1, 2, 8] {
        let got = watchdog("background on background", move || {
            let pool = Pool::builder().max_workers(max).build().unwrap();
            let p = pool.clone();
            let h = pool
                .job(move || {
                    p.job(|| 1)
                        .priority(Priority::Background)
                        .submit()
                        .unwrap()
                        .wait()
                })
                .priority(Priority::Background)
                .submit()
                .unwrap();
            h.wait()
        });
        assert_eq!(got, Ok(Ok(1)), "max_workers {max}");
    }
}

/// A chain of 140 background jobs, each waiting on the next, on a default pool.
#[test]
fn a_long_chain_of_background_waits_completes_on_a_default_pool() {
    fn chain(pool: &Pool, depth: u32) -> offthread::Handle<u32> {
        let p = pool.clone();
        pool.job(move || {
            if depth == 0 {
                return 0;
            }
            chain(&p, depth - 1).wait().unwrap() + 1
        })
        .priority(Priority::Background)
        .submit()
        .unwrap()
    }
    let got = watchdog("a chain of 140", || chain(&Pool::new(), 140).wait());
    assert_eq!(got, Ok(140));
}

/// A completion callback that waits on a job of its own pool completes.
#[test]
fn a_callback_waiting_on_its_own_pool_completes() {
    for max in [1, 4] {
        let got = watchdog("callback waits", move || {
            let pool = Pool::builder().max_workers(max).build().unwrap();
            let p = pool.clone();
            let (tx, rx) = mpsc::channel();
            let _ticket = pool
                .job(|| 20)
                .on_complete(move |v| {
                    let more = p.submit(|| 22).unwrap().wait();
                    tx.send(v.unwrap() + more.unwrap()).unwrap();
                })
                .submit()
                .unwrap();
            rx.recv().unwrap()
        });
        assert_eq!(got, 42, "max_workers {max}");
    }
}

/// A wake hook that waits on a job of its own pool completes.
#[test]
fn a_wake_hook_waiting_on_its_own_pool_completes() {
    let got = watchdog("wake hook waits", || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let p = pool.clone();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let inbox = Inbox::with_wake(4, move || {
            let v = p.submit(|| 5).unwrap().wait().unwrap();
            let _ = tx.lock().unwrap().send(v);
        });
        let _ticket = pool.job(|| 1).inbox(&inbox, ()).submit().unwrap();
        rx.recv().unwrap()
    });
    assert_eq!(got, 5);
}

/// A worker dropping a detached result whose `Drop` blocks is busy, not "about to serve": the
/// next job goes to the idle worker at once. (The `Drop` waits until the next job has run, so
/// if that job waited for the busy worker, neither would ever finish.)
#[test]
fn a_worker_dropping_a_detached_result_is_busy_not_coming() {
    struct SlowDrop(Option<mpsc::Receiver<()>>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            if let Some(rx) = self.0.take() {
                rx.recv_timeout(HUGE).expect("the next job never ran");
            }
        }
    }
    let got = watchdog("detached drop", || {
        let pool = Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let (dropping_tx, dropping) = mpsc::channel();
        let (detached_tx, detached_rx) = mpsc::channel::<()>();
        let detached = pool
            .submit(move || {
                // Return only once the handle is gone, so the worker drops the result.
                detached_rx.recv().unwrap();
                dropping_tx.send(()).unwrap();
                SlowDrop(Some(rx))
            })
            .unwrap();
        drop(detached);
        detached_tx.send(()).unwrap();
        dropping.recv().unwrap();
        // The detached job's worker now delivers (and drops) its result; the other is idle.
        let v = pool.submit(|| 7).unwrap().wait();
        tx.send(()).unwrap();
        v
    });
    assert_eq!(got, Ok(7));
}

/// Iterating a stream, a chunked file read, or an inbox inside the pool's only worker
/// completes: the consumer's wait lends a worker to the producer.
#[test]
fn consuming_a_stream_inside_the_only_worker_completes() {
    let got = watchdog("stream in worker", || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let p = pool.clone();
        pool.submit(move || {
            let items = p
                .stream(1, |out| {
                    for i in 0..10 {
                        if out.send(i).is_err() {
                            return;
                        }
                    }
                })
                .unwrap();
            items.map(Result::unwrap).sum::<i32>()
        })
        .unwrap()
        .wait()
    });
    assert_eq!(got, Ok(45));
}

#[test]
fn reading_chunks_inside_the_only_worker_completes() {
    let dir = TempDir::new("no-hang-chunks");
    let path = dir.join("f");
    std::fs::write(&path, vec![7u8; 10_000]).unwrap();
    let got = watchdog("read_chunks in worker", move || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let p = pool.clone();
        pool.submit(move || {
            offthread::fs::on(&p)
                .read_chunks(&path, 1000, 1)
                .map(|c| c.unwrap().len())
                .sum::<usize>()
        })
        .unwrap()
        .wait()
    });
    assert_eq!(got, Ok(10_000));
}

#[test]
fn receiving_from_an_inbox_inside_the_only_worker_completes() {
    let got = watchdog("inbox recv in worker", || {
        let pool = Pool::builder().max_workers(1).build().unwrap();
        let p = pool.clone();
        pool.submit(move || {
            let inbox = Inbox::new(4);
            for i in 0..3 {
                let _ = p.job(move || i).inbox(&inbox, i).submit().unwrap();
            }
            let mut sum = 0;
            while let Some((_, v)) = inbox.recv() {
                sum += v.unwrap();
            }
            sum
        })
        .unwrap()
        .wait()
    });
    assert_eq!(got, Ok(3));
}

/// `submit` from a job into its own full queue completes: the submitter's wait for room lends
/// a worker, which frees a slot.
#[test]
fn submitting_into_ones_own_full_queue_completes() {
    let got = watchdog("submit into own full queue", || {
        let pool = Pool::builder()
            .max_workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let p = pool.clone();
        pool.submit(move || {
            let a = p.submit(|| 1).unwrap();
            let b = p.submit(|| 2).unwrap();
            let c = p
                .submit_timeout(|| 3, Duration::from_secs(3600))
                .ok()
                .unwrap();
            a.wait().unwrap() + b.wait().unwrap() + c.wait().unwrap()
        })
        .unwrap()
        .wait()
    });
    assert_eq!(got, Ok(6));
}

/// `shutdown` and `shutdown_now` called from the callback of an expired job (which the monitor
/// thread runs) return, and a later `shutdown` from elsewhere returns too.
#[test]
fn shutdown_from_the_monitor_thread_returns() {
    for now in [false, true] {
        watchdog("shutdown on the monitor", move || {
            let pool = Pool::builder().max_workers(1).build().unwrap();
            let gate = Gate::new();
            let busy = occupy(&pool, 1, &gate);
            let p = pool.clone();
            let (tx, rx) = mpsc::channel();
            let _ticket = pool
                .job(|| ())
                .start_deadline(Instant::now() + Duration::from_millis(1))
                .on_complete(move |outcome| {
                    if now {
                        p.shutdown_now();
                    } else {
                        p.shutdown();
                    }
                    tx.send(outcome).unwrap();
                })
                .submit()
                .unwrap();
            // The monitor expires the job while the worker is held; its callback shuts down,
            // and a graceful shutdown waits for the held worker: let it go once expired.
            eventually("the job expires", || pool.stats().expired == 1);
            gate.open();
            assert_eq!(rx.recv().unwrap(), Err(JobError::Expired));
            drop(busy);
            pool.shutdown();
        });
    }
}

/// A `submit` waiting for room in a full inbox returns `ShutDown` with its job when the pool
/// shuts down, though nobody drains the inbox.
#[test]
fn shutdown_ends_a_submit_waiting_on_a_full_inbox() {
    for _ in 0..20 {
        let refused = watchdog("submit on a full inbox", || {
            let pool = Pool::new();
            let inbox = Inbox::new(1);
            let _first = pool.job(|| 1).inbox(&inbox, ()).submit().unwrap();
            let (p, i) = (pool.clone(), inbox.clone());
            let blocked = std::thread::spawn(move || match p.job(|| 2).inbox(&i, ()).submit() {
                Ok(_) => None,
                Err(e) => Some((e.is_shut_down(), e.into_inner()())),
            });
            pool.shutdown();
            blocked.join().unwrap()
        });
        assert_eq!(refused, Some((true, 2)), "refused with its job");
    }
}

/// The same for `submit_async`: pending on a full inbox, woken by the shutdown, refused.
#[test]
fn shutdown_wakes_a_submit_async_pending_on_a_full_inbox() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let pool = Pool::new();
    let inbox = Inbox::new(1);
    let _first = pool.job(|| 1).inbox(&inbox, ()).submit().unwrap();
    let mut fut = Box::pin(pool.job(|| 2).inbox(&inbox, ()).submit_async());
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending(), "the inbox is full");
    pool.shutdown();
    assert!(
        count.0.load(Ordering::SeqCst) >= 1,
        "the shutdown woke the future"
    );
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.is_shut_down()),
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|r| r.map(drop).is_ok())
        ),
    }
}

/// Sizes far beyond what a machine has are errors or grow lazily: never a panic or an abort.
#[test]
fn huge_sizes_are_typed_errors_or_lazy() {
    // A worker limit of 2^40 is a limit, not an allocation.
    let pool = Pool::builder().max_workers(1 << 40).build().unwrap();
    assert_eq!(pool.submit(|| 1).unwrap().wait(), Ok(1));
    // min = max = usize::MAX starts threads one by one until one is refused: a BuildError.
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let err = Pool::builder()
        .min_workers(usize::MAX)
        .max_workers(usize::MAX)
        .before_spawn(move |_| {
            if s.fetch_add(1, Ordering::SeqCst) < 3 {
                Ok(())
            } else {
                Err(std::io::Error::other("no more threads"))
            }
        })
        .build()
        .unwrap_err();
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("no more threads"), "{err}");
    // A chunk size of 1 TiB reads what the file holds.
    let dir = TempDir::new("no-hang-huge-chunk");
    let path = dir.join("f");
    std::fs::write(&path, [1u8; 100]).unwrap();
    let chunks: Vec<_> = offthread::fs::on(&pool)
        .read_chunks(&path, 1 << 40, 1)
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunks, [vec![1u8; 100]]);
}

/// A lane's job submitting into a queue that only its own lane's later jobs fill is refused
/// at once: those jobs start only after it returns. Its completion callback is refused the
/// same way (the lane moves on only after the callback).
#[test]
fn a_lane_job_submitting_into_a_queue_full_of_its_lane_is_refused() {
    let got = watchdog("lane job into its lane's full queue", || {
        let pool = one_worker(1);
        let lane = pool.lane();
        let l = lane.clone();
        let (tx, rx) = mpsc::channel();
        let h = lane
            .job(move || {
                let later = l.submit(|| "later").unwrap(); // waits in the lane, holds the slot
                let refused = l.submit(|| "never").unwrap_err();
                let timed = l.job(|| "never").submit_timeout(Duration::from_secs(3600));
                (
                    later,
                    refused.is_would_deadlock(),
                    timed.unwrap_err().is_would_deadlock(),
                )
            })
            .on_complete(move |outcome| {
                tx.send(outcome).unwrap();
            })
            .submit()
            .unwrap();
        drop(h);
        let (later, refused, timed) = rx.recv().unwrap().unwrap();
        (later.wait(), refused, timed)
    });
    assert_eq!(got, (Ok("later"), true, true));
}

/// A completion callback of a lane's job waiting on a later job of that lane is refused.
#[test]
fn a_lane_jobs_callback_waiting_on_its_lane_is_refused() {
    let got = watchdog("callback waits on its lane", || {
        let pool = Pool::new();
        let lane = pool.lane();
        let l = lane.clone();
        let (tx, rx) = mpsc::channel();
        let _ticket = lane
            .job(|| ())
            .on_complete(move |_| {
                let later = l.submit(|| 1).unwrap();
                tx.send(later.wait()).unwrap();
            })
            .submit()
            .unwrap();
        rx.recv().unwrap()
    });
    assert_eq!(got, Err(JobError::WouldDeadlock));
}

#[test]
fn a_job_queued_behind_a_job_that_waits_for_it_gets_the_idle_worker() {
    watchdog("a job behind a job that waits for it", || {
        // An idle worker never times out here: only the pool can send it to the job.
        let pool = Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .keep_alive(Duration::from_secs(3600))
            .build()
            .unwrap();
        // Thousands of trivial jobs first: whatever the pool infers from their length, the
        // job that follows is not short.
        for _ in 0..5 {
            let handles: Vec<_> = (0..1000).map(|i| pool.submit(move || i).unwrap()).collect();
            for h in handles {
                h.wait().unwrap();
            }
        }
        // A job that ends only once the job submitted after it has run.
        let (release, released) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let first = pool
            .submit(move || {
                started.send(()).unwrap();
                released.recv().unwrap();
            })
            .unwrap();
        running.recv().unwrap();
        let second = pool.submit(move || release.send(()).unwrap()).unwrap();
        assert_eq!(second.wait(), Ok(()));
        assert_eq!(first.wait(), Ok(()));
    });
}
