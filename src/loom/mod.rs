//! Model checks under `loom` (`--cfg offthread_loom`): the job state machine and handle races
//! (`model.rs`), the stream and inbox channels (`channels.rs`), and the lend decision
//! (`lend.rs`).

mod channels;
mod lend;
mod model;
