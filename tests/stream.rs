//! Bounded streams: backpressure (counted), early drop, producer panic, both consumption
//! modes, and the low-level channel.
mod common;
use common::*;
use offthread::{JobError, Pool, is_cancelled, stream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

#[test]
fn the_producer_is_never_more_than_the_bound_ahead() {
    for buffer in [1, 3, 8] {
        let pool = Pool::new();
        let produced = Arc::new(AtomicUsize::new(0));
        let p = produced.clone();
        let mut items = pool
            .stream(buffer, move |out| {
                for i in 0..200u32 {
                    p.fetch_add(1, Ordering::SeqCst); // counted before it is offered
                    if out.send(i).is_err() {
                        return;
                    }
                }
            })
            .unwrap();
        let mut consumed = 0;
        loop {
            // Let the producer run ahead as far as it can: it must stop at the bound.
            eventually("the producer fills the buffer or ends", || {
                items.buffered() == buffer || items.is_finished() || consumed + buffer >= 200
            });
            let ahead = produced.load(Ordering::SeqCst) - consumed;
            assert!(ahead <= buffer + 1, "buffer {buffer}: {ahead} ahead");
            match items.next() {
                Some(item) => {
                    assert_eq!(item, Ok(consumed as u32), "in order");
                    consumed += 1;
                }
                None => break,
            }
        }
        assert_eq!(consumed, 200);
    }
}

#[test]
fn dropping_the_consumer_stops_the_producer_and_frees_its_worker() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let (stopped_tx, stopped) = mpsc::channel();
    let mut items = pool
        .stream(2, move |out| {
            let mut i = 0u64;
            let refused = loop {
                if let Err(e) = out.send(i) {
                    break e.0;
                }
                i += 1;
            };
            stopped_tx.send((refused, is_cancelled())).unwrap();
        })
        .unwrap();
    assert_eq!(items.next(), Some(Ok(0)));
    assert_eq!(items.next(), Some(Ok(1)));
    drop(items);
    let (refused, flag) = stopped.recv_timeout(HUGE).unwrap();
    assert!(
        refused >= 2,
        "the item it could not send came back: {refused}"
    );
    assert!(flag, "the producer sees is_cancelled");
    // The only worker is free again.
    assert_eq!(
        pool.submit(|| 5).unwrap().wait_timeout(HUGE).ok(),
        Some(Ok(5))
    );
}

#[test]
fn a_stream_dropped_before_its_producer_starts_never_runs_it() {
    let gate = Gate::new();
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool, 1, &gate);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let items = pool
        .stream(1, move |out: &mut stream::Sender<u8>| {
            r.store(true, Ordering::SeqCst);
            let _ = out.send(1);
        })
        .unwrap();
    drop(items);
    assert_eq!(pool.stats().cancelled, 1);
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn a_panicking_producer_ends_the_stream_with_its_message() {
    let pool = Pool::new();
    let items = pool
        .stream(4, |out| {
            out.send(1).unwrap();
            out.send(2).unwrap();
            panic!("disk on fire");
        })
        .unwrap();
    let all: Vec<_> = items.collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[..2], [Ok(1), Ok(2)]);
    assert_eq!(
        all[2].as_ref().unwrap_err().panic_message(),
        Some("disk on fire")
    );
    assert_eq!(pool.submit(|| "alive").unwrap().wait(), Ok("alive"));
}

#[test]
fn streams_are_consumed_as_async_streams_under_two_executors() {
    let pool = Pool::new();
    let items = pool.stream_iter(3, || 0..100).unwrap();
    let got: Vec<_> = collect_stream(items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut items = pool.stream_iter(3, || 0..100).unwrap();
    let got = rt.block_on(async move {
        let mut got = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut items), cx)
        })
        .await
        {
            got.push(item.unwrap());
        }
        got
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn try_next_never_blocks() {
    let gate = Gate::new();
    let pool = Pool::new();
    let g = gate.clone();
    let mut items = pool
        .stream(2, move |out| {
            g.wait();
            out.send("late").unwrap();
        })
        .unwrap();
    assert_eq!(items.try_next(), None);
    assert!(!items.is_finished());
    gate.open();
    let mut got = None;
    eventually("the item arrives", || {
        got = items.try_next();
        got.is_some()
    });
    assert_eq!(got, Some(Ok("late")));
    eventually("the stream ends", || items.is_finished());
    assert_eq!(items.next(), None);
}

#[test]
fn shutdown_now_ends_a_queued_producers_stream_with_shut_down() {
    let gate = Gate::new();
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let busy = occupy(&pool, 1, &gate);
    let items = pool.stream(1, |out| out.send(1).unwrap()).unwrap();
    let closer = std::thread::spawn({
        let pool = pool.clone();
        move || pool.shutdown_now()
    });
    let all: Vec<_> = items.collect();
    assert_eq!(all, [Err(JobError::ShutDown)]);
    gate.open();
    closer.join().unwrap();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    // And after shutdown, a new stream is refused with its producer handed back.
    let refused = pool.stream(1, |_: &mut stream::Sender<u8>| ()).unwrap_err();
    assert!(refused.is_shut_down());
}

#[test]
fn a_full_queue_refuses_try_stream() {
    let gate = Gate::new();
    let pool = one_worker(1);
    let busy = occupy(&pool, 1, &gate);
    let _queued = pool.submit(|| ()).unwrap();
    let refused = pool
        .try_stream(1, |_: &mut stream::Sender<u8>| ())
        .unwrap_err();
    assert!(refused.is_full());
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn state_pools_stream_with_worker_state() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| vec!["a", "b", "c"])
        .unwrap();
    let items = pool
        .stream(1, |rows: &mut Vec<&str>, out| {
            for row in rows.iter() {
                if out.send(row.to_uppercase()).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let got: Vec<_> = items.map(Result::unwrap).collect();
    assert_eq!(got, ["A", "B", "C"]);
}

#[test]
fn the_low_level_channel_reports_a_producer_that_panicked() {
    let (mut out, items) = stream::channel::<u32>(4);
    let t = std::thread::spawn(move || {
        out.send(7).unwrap();
        panic!("producer bug");
    });
    assert!(t.join().is_err());
    let all: Vec<_> = items.collect();
    assert_eq!(all[0], Ok(7));
    assert!(all[1].as_ref().unwrap_err().is_panic());
    assert_eq!(all.len(), 2);
    // A consumer that left makes `send` hand the item back.
    let (mut out, items) = stream::channel::<u32>(1);
    drop(items);
    assert!(out.is_closed());
    assert_eq!(out.send(3).unwrap_err().0, 3);
}

#[test]
fn a_state_pool_streams_an_iterator_built_from_its_state() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| vec![3, 1, 2])
        .unwrap();
    let rows = pool
        .stream_iter(1, |table: &mut Vec<i32>| {
            table.sort();
            table.clone()
        })
        .unwrap();
    assert_eq!(rows.map(Result::unwrap).collect::<Vec<_>>(), [1, 2, 3]);
    let again = pool.submit(|table: &mut Vec<i32>| table.clone()).unwrap();
    assert_eq!(again.wait(), Ok(vec![1, 2, 3])); // the iterator ran on the worker's own state
}
