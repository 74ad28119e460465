//! What `close` must end: a database's live sessions and query streams.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::session;
use crate::stream::Cut;

/// A database's open sessions and query streams, held weakly: `close` ends each one, so that
/// neither a session waiting for its owner's next call nor a reader waiting for a consumer
/// that never reads can hold the close up.
#[derive(Default)]
pub(super) struct Live {
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    /// `close` has begun: anything added from now on is ended at once.
    closed: bool,
    sessions: Vec<Weak<session::Link>>,
    streams: Vec<Weak<dyn Cut>>,
}

/// Adds `item` to `list`, sweeping out the dead entries whenever the list would grow (so its
/// length stays within twice the live entries, at constant cost per add).
fn add_live<T: ?Sized>(list: &mut Vec<Weak<T>>, item: Weak<T>) {
    if list.len() == list.capacity() {
        list.retain(|w| w.strong_count() > 0);
    }
    list.push(item);
}

impl Live {
    pub(super) fn add_session(&self, link: &Arc<session::Link>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            link.close();
            return;
        }
        add_live(&mut st.sessions, Arc::downgrade(link));
    }

    pub(super) fn add_stream(&self, stream: Weak<dyn Cut>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            if let Some(stream) = stream.upgrade() {
                stream.cut();
            }
            return;
        }
        add_live(&mut st.streams, stream);
    }

    /// Ends every live session (rolled back once the calls already sent have run) and query
    /// stream (its consumer gets `Closed` after the batches already read).
    pub(super) fn end_all(&self) {
        let (sessions, streams) = {
            let mut st = self.state.lock();
            st.closed = true;
            (
                std::mem::take(&mut st.sessions),
                std::mem::take(&mut st.streams),
            )
        };
        for link in sessions.iter().filter_map(Weak::upgrade) {
            link.close();
        }
        for stream in streams.iter().filter_map(Weak::upgrade) {
            stream.cut();
        }
    }
}
