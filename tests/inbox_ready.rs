//! Waking an event loop from an inbox: the readiness handle (readable while outcomes wait,
//! checked with `poll`) and the inbox as an async `Stream`.
mod common;
use common::*;
use offthread::{Inbox, Pool};

#[cfg(unix)]
mod readiness {
    use super::*;
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    /// Whether `fd` is readable within `wait` (zero: right now).
    fn readable(fd: &offthread::ReadyFd, wait: std::time::Duration) -> bool {
        let timeout = Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        poll(&mut fds, Some(&timeout)).unwrap() == 1
    }

    #[test]
    fn the_handle_is_readable_exactly_while_outcomes_wait() {
        watchdog("readiness", || {
            let now = std::time::Duration::ZERO;
            let inbox = Inbox::new(16);
            let fd = inbox.readiness().unwrap();
            assert!(!readable(&fd, now));
            let gate = Gate::new();
            let pool = Pool::builder().max_workers(1).build().unwrap();
            let g = gate.clone();
            pool.job(move || g.wait())
                .inbox(&inbox, ())
                .submit()
                .unwrap();
            pool.job(|| ()).inbox(&inbox, ()).submit().unwrap();
            assert!(!readable(&fd, now), "nothing delivered yet");
            gate.open();
            assert!(readable(&fd, HUGE), "woken by the first delivery");
            eventually("both delivered", || inbox.len() == 2);
            assert!(inbox.try_recv().is_some());
            assert!(readable(&fd, now), "one outcome still waits");
            assert!(inbox.try_recv().is_some());
            assert!(!readable(&fd, now), "emptied");

            // Again, and a second handle is the same socket.
            let other = inbox.readiness().unwrap();
            pool.job(|| ()).inbox(&inbox, ()).submit().unwrap();
            assert!(readable(&other, HUGE) && readable(&fd, now));
            assert_eq!(inbox.drain().count(), 1);
            assert!(!readable(&fd, now) && !readable(&other, now));
        });
    }

    #[test]
    fn a_handle_made_while_outcomes_wait_is_readable_at_once() {
        let inbox = Inbox::new(4);
        let pool = Pool::new();
        pool.job(|| 7).inbox(&inbox, ()).submit().unwrap();
        pool.shutdown();
        let fd = inbox.readiness().unwrap();
        assert!(readable(&fd, std::time::Duration::ZERO));
        assert_eq!(inbox.recv().map(|(_, o)| o), Some(Ok(7)));
        assert!(!readable(&fd, std::time::Duration::ZERO));
    }
}

/// Awaited as a stream, the inbox yields each outcome and wakes its task on delivery: one
/// thread runs both the awaiting task and the one that submits.
#[test]
fn an_inbox_is_a_stream_that_wakes_its_task() {
    use futures::StreamExt;
    watchdog("inbox stream", || {
        let pool = Pool::new();
        let mut inbox = Inbox::new(8);
        let submitter = inbox.clone();
        let (got, ()) = futures::executor::block_on(futures::future::join(
            async {
                let mut got = Vec::new();
                while got.len() < 3 {
                    let (k, outcome) = inbox.next().await.unwrap();
                    got.push((k, outcome.unwrap()));
                }
                got
            },
            async {
                for i in 0..3 {
                    pool.job(move || i * 2)
                        .inbox(&submitter, i)
                        .submit()
                        .unwrap();
                }
            },
        ));
        let mut got = got;
        got.sort();
        assert_eq!(got, [(0, 0), (1, 2), (2, 4)]);
    });
}
