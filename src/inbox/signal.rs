//! The readiness handle of an inbox ([`Inbox::readiness`](super::Inbox::readiness)): one end of
//! a socket pair that holds a byte while outcomes wait, so a loop built on `poll`/`epoll`
//! (mio, calloop, glib's `unix_fd_add`, Qt's socket notifiers) waits on results with no timer
//! and no callback thread.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The pair behind an inbox's readiness: the inbox writes one byte into `tx` when it becomes
/// non-empty, and reads `rx` dry when it is emptied.
#[derive(Debug)]
pub(super) struct Signal {
    tx: UnixStream,
    rx: UnixStream,
}

impl Signal {
    pub(super) fn new() -> io::Result<Self> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Self { tx, rx })
    }

    /// The read end, for the caller's event loop.
    pub(super) fn handle(&self) -> io::Result<ReadyFd> {
        Ok(ReadyFd(OwnedFd::from(self.rx.try_clone()?)))
    }

    /// Makes the read end readable. A full socket buffer means it already is.
    pub(super) fn raise(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Reads the read end dry: not readable until the next `raise`.
    pub(super) fn lower(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A file descriptor that is readable while outcomes wait in its [`Inbox`](super::Inbox), made
/// by [`Inbox::readiness`](super::Inbox::readiness). Register it with the event loop for
/// readability (level-triggered); when it fires, drain the inbox. It stops being readable
/// once the inbox is empty. Never read from it: its contents are the inbox's.
#[derive(Debug)]
pub struct ReadyFd(OwnedFd);

impl AsFd for ReadyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
