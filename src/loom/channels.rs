//! Model checking of the two channels outside the pool under `loom` (run as the models in
//! `model.rs`): the bounded stream (blocking and async consumers, a producer waiting for room,
//! a consumer leaving) and the inbox (reservations, delivery, a blocking `recv`, a reservation
//! given back).

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::model::{Tracked, load, model};
use crate::job::OffWorker;

/// The bounded stream: a producer sends two items through a buffer of one (so the second send
/// waits for room) while the consumer iterates (blocking). Every item arrives once, in order,
/// the end is seen, and no side is left waiting.
#[test]
fn loom_stream_delivers_every_item_in_order_through_a_full_buffer() {
    model(|| {
        let (mut out, mut items) = crate::stream::channel::<usize>(1);
        let producer = thread::spawn(move || {
            for i in 0..2 {
                assert!(out.send(i).is_ok());
            }
        });
        let got: Vec<usize> = items.by_ref().map(Result::unwrap).collect();
        assert_eq!(got, [0, 1]);
        assert_eq!(items.buffered(), 0);
        producer.join().unwrap();
    });
}

/// The consumer takes one item and leaves: a producer blocked on the full buffer is released
/// with its item back, and every item is dropped exactly once.
#[test]
fn loom_stream_consumer_leaving_releases_a_blocked_producer() {
    model(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let (mut out, mut items) = crate::stream::channel::<Tracked>(1);
        let producer = {
            let dropped = dropped.clone();
            thread::spawn(move || {
                let mut sent = 0;
                for _ in 0..3 {
                    match out.send(Tracked(dropped.clone())) {
                        Ok(()) => sent += 1,
                        Err(refused) => {
                            drop(refused.0); // the item came back
                            break;
                        }
                    }
                }
                sent
            })
        };
        drop(items.next().expect("the first item").ok());
        drop(items);
        let sent = producer.join().unwrap();
        assert!((1..=3).contains(&sent));
        assert_eq!(load(&dropped), sent + usize::from(sent < 3));
    });
}

/// An async consumer (`Stream::poll_next`) is woken for each item and for the end.
#[test]
fn loom_stream_async_consumer_is_woken() {
    model(|| {
        use futures_core::Stream;
        use std::pin::Pin;
        let (mut out, mut items) = crate::stream::channel::<usize>(1);
        let producer = thread::spawn(move || {
            for i in 0..2 {
                assert!(out.send(i).is_ok());
            }
        });
        let got = loom::future::block_on(async move {
            let mut got = Vec::new();
            while let Some(item) =
                std::future::poll_fn(|cx| Pin::new(&mut items).poll_next(cx)).await
            {
                got.push(item.unwrap());
            }
            got
        });
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

/// The inbox: a submitter reserves a slot (waiting while the one slot is taken) and delivers,
/// twice, while the consumer blocks in `recv`. Both outcomes arrive in order, the wake hook
/// runs once per delivery, and no side is left waiting. (`recv` returns `None` when nothing is
/// on its way, which can happen between the two jobs: the consumer then looks again.)
#[test]
fn loom_inbox_delivery_vs_blocking_recv_with_backpressure() {
    use crate::inbox::{Inbox, InboxSink};
    use crate::job::OutcomeSink;
    model(|| {
        let wakes = Arc::new(AtomicUsize::new(0));
        let inbox: Inbox<usize, usize> = {
            let wakes = wakes.clone();
            Inbox::with_wake(1, move || {
                wakes.fetch_add(1, Ordering::Relaxed);
            })
        };
        let submitter = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                let room = inbox.room();
                for key in 0..2 {
                    assert!(room.reserve_until(None, &|| false));
                    assert!(!InboxSink::new(inbox.clone(), key).deliver(
                        Ok(key * 10),
                        &(),
                        &OffWorker
                    ));
                }
            })
        };
        let mut got = Vec::new();
        while got.len() < 2 {
            match inbox.recv() {
                Some((key, outcome)) => got.push((key, outcome.unwrap())),
                None => thread::yield_now(),
            }
        }
        submitter.join().unwrap();
        assert_eq!(got, [(0, 0), (1, 10)]);
        assert_eq!(load(&wakes), 2);
        assert_eq!((inbox.len(), inbox.in_flight()), (0, 0));
        assert_eq!(inbox.recv(), None, "nothing is on its way");
    });
}

/// A reservation given back (a refused submission) while the consumer blocks in `recv`: the
/// consumer wakes and gets `None` instead of waiting forever.
#[test]
fn loom_inbox_reservation_given_back_wakes_a_blocked_recv() {
    use crate::inbox::Inbox;
    model(|| {
        let inbox: Inbox<usize, usize> = Inbox::new(1);
        let room = inbox.room();
        assert!(room.try_reserve());
        let refused = thread::spawn(move || room.release());
        assert_eq!(inbox.recv(), None);
        refused.join().unwrap();
        assert_eq!(inbox.in_flight(), 0);
    });
}
