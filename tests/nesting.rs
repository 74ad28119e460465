//! Random trees of jobs that block on their own pool in every way the crate offers — handle
//! waits (with and without a timeout), stream iteration, an inbox's `recv`, blocking submits
//! into a full queue, and completion callbacks that wait and submit — on pools of 1–3 workers
//! with tiny queues, random priorities, and serial lanes. Every run must end: every wait
//! returns its value, or `WouldDeadlock` where the crate promises to refuse (a lane's job
//! waiting on a later job of its own lane), and every job runs exactly once. A hang fails the
//! case through the watchdog.
//!
//! The trees never build a cycle through lanes (a job waiting, through other jobs, on a later
//! job of a lane one of its ancestors belongs to): like two locks taken in opposite orders,
//! that is a deadlock of the caller's own making, and GUARANTEES.md lists it as not promised.
//! Each child uses no lane, a lane above every lane of its ancestors, or — to be refused —
//! exactly its parent's own lane; a parent refused that wait lets the job go (cancel on drop),
//! since a job left waiting in the lane would hold a queue slot until the parent returns, and
//! a descendant blocked on a full queue would then close such a cycle.
mod common;
use common::*;
use offthread::{Inbox, JobError, Lane, Pool, Priority};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a parent blocks on one child.
#[derive(Debug, Clone, Copy)]
enum Block {
    Wait,
    WaitTimeout,
    /// The child is a stream producer; the parent iterates the stream.
    Stream,
    /// The child delivers to an inbox; the parent `recv`s.
    Inbox,
    /// The child's completion callback waits on a job of its own and sends the child's value
    /// through a bounded stream channel (a blocking send); the parent iterates it.
    Callback,
}

#[derive(Debug, Clone)]
struct Node {
    block: Block,
    priority: Priority,
    /// 0: no lane; else which lane (see the module docs for how they are chosen).
    lane: u8,
    children: Vec<Node>,
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        Just(Block::Wait),
        Just(Block::WaitTimeout),
        Just(Block::Stream),
        Just(Block::Inbox),
        Just(Block::Callback),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Interactive),
        Just(Priority::Normal),
        Just(Priority::Background),
    ]
}

/// A tree with lanes still unassigned (a lane "wish" 0–3 per node, fixed up by `assign`).
fn tree() -> impl Strategy<Value = Node> {
    let leaf = (block(), priority(), 0..4u8).prop_map(|(block, priority, lane)| Node {
        block,
        priority,
        lane,
        children: Vec::new(),
    });
    leaf.prop_recursive(3, 24, 3, |inner| {
        (
            block(),
            priority(),
            0..4u8,
            proptest::collection::vec(inner, 0..4),
        )
            .prop_map(|(block, priority, lane, children)| Node {
                block,
                priority,
                lane,
                children,
            })
    })
}

/// Turns lane wishes into lanes that make no cycle: 0 stays 0; 3 means "my parent's own lane"
/// (refused, if the parent has one and waits on the job's handle);
/// else a lane above every ancestor's.
fn assign(node: &mut Node, parent_lane: u8, highest: u8) {
    let waits_on_the_job = matches!(node.block, Block::Wait | Block::WaitTimeout);
    node.lane = match node.lane {
        0 => 0,
        3 if parent_lane != 0 && waits_on_the_job => parent_lane,
        3 => 0,
        wish => {
            let lane = highest + wish.min(2);
            if lane > 8 { 0 } else { lane }
        }
    };
    let highest = highest.max(node.lane);
    let lane = node.lane;
    for child in &mut node.children {
        assign(child, lane, highest);
    }
}

fn count(node: &Node) -> u64 {
    1 + node.children.iter().map(count).sum::<u64>()
}

/// What every job shares.
#[derive(Clone)]
struct World {
    pool: Pool,
    lanes: Arc<Vec<Lane>>,
    /// Bodies run (each job's body runs exactly once).
    ran: Arc<AtomicU64>,
    /// Waits refused with `WouldDeadlock` (each must have been a same-lane wait).
    refused: Arc<AtomicU64>,
    /// Jobs never run, with their subtrees: a refused wait's job (let go, so cancelled), or a
    /// submission refused with `WouldDeadlock` (a lane's job submitting into a queue full of
    /// that lane's later jobs).
    skipped: Arc<AtomicU64>,
}

/// What a parent's wait on a child returned: the child's subtree count, or a refusal.
type Waited = Result<u64, JobError>;

/// Unwraps a submission, turning a `WouldDeadlock` refusal into `Err(Cancelled)` for the
/// caller to count; any other refusal fails the test.
macro_rules! submitted {
    ($submit:expr) => {
        match $submit {
            Ok(receipt) => receipt,
            Err(e) if e.is_would_deadlock() => return Err(JobError::Cancelled),
            Err(e) => panic!("a nested submit failed: {e}"),
        }
    };
}

impl World {
    /// A child's body: blocks on each of its own children in turn; returns the number of
    /// bodies in its subtree that it saw finish.
    fn body(&self, node: &Node) -> u64 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        let mut seen = 1;
        for child in &node.children {
            match self.block_on(node, child) {
                Ok(n) => seen += n,
                Err(JobError::WouldDeadlock) => {
                    assert!(
                        child.lane != 0 && child.lane == node.lane,
                        "refused: {child:?}"
                    );
                    // Cancelled by its handle's drop: it and its subtree never run.
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    self.skipped.fetch_add(count(child), Ordering::SeqCst);
                }
                Err(JobError::Cancelled) => {
                    // The submission itself was refused (see `skipped`): only a lane's job
                    // can meet a queue that never makes room.
                    assert!(node.lane != 0, "submit refused outside a lane: {child:?}");
                    self.skipped.fetch_add(count(child), Ordering::SeqCst);
                }
                Err(e) => panic!("a nested wait failed: {e:?} for {child:?}"),
            }
        }
        seen
    }

    /// Submits `child` (from inside `parent`'s body) and blocks on it as it says. A refused
    /// submission is reported as `Cancelled` (the child never ran).
    fn block_on(&self, parent: &Node, child: &Node) -> Waited {
        let world = self.clone();
        let node = child.clone();
        let job = move || world.body(&node);
        macro_rules! builder {
            ($f:expr) => {{
                let f = $f;
                let b = match child.lane {
                    0 => self.pool.job(f),
                    l => self.lanes[usize::from(l) - 1].job(f),
                };
                let b = b.priority(child.priority);
                // A wait on a later job of one's own lane is refused; the caller then lets the
                // job go (its handle's drop cancels it), as it could never have waited for it.
                if child.lane != 0 && child.lane == parent.lane {
                    b.cancel_on_drop()
                } else {
                    b
                }
            }};
        }
        match child.block {
            Block::Wait => submitted!(builder!(job).submit()).wait(),
            Block::WaitTimeout => submitted!(builder!(job).submit())
                .wait_timeout(HUGE)
                .unwrap_or_else(|_| panic!("hang: a nested wait_timeout ran out")),
            Block::Stream if child.lane == 0 => {
                let items = submitted!(self.pool.stream(1, move |out| {
                    let n = job();
                    let _ = out.send(n);
                    let _ = out.send(0);
                }));
                items.sum()
            }
            Block::Stream => {
                // A lane has no `stream`: its job feeds a channel of its own.
                let (mut out, items) = offthread::stream::channel(1);
                let _ticket = submitted!(
                    builder!(move || {
                        let n = job();
                        let _ = out.send(n);
                        let _ = out.send(0);
                    })
                    .on_complete(drop)
                    .submit()
                );
                items.sum()
            }
            Block::Inbox => {
                let inbox = Inbox::new(1);
                let _ticket = submitted!(builder!(job).inbox(&inbox, ()).submit());
                let (_, outcome) = inbox.recv().expect("a job is on its way");
                outcome
            }
            Block::Callback => {
                let (mut out, items) = offthread::stream::channel(1);
                let pool = self.pool.clone();
                let _ticket = submitted!(
                    builder!(job)
                        .on_complete(move |outcome| {
                            // A callback that waits on its own pool, then sends (blocking).
                            // Its submit is refused like its job's would be (the callback
                            // runs before the job's lane moves on).
                            let extra = match pool.submit(|| 0u64) {
                                Ok(h) => h.wait().unwrap(),
                                Err(e) if e.is_would_deadlock() => 0,
                                Err(e) => panic!("a callback's submit failed: {e}"),
                            };
                            let _ = out.send(outcome.map(|n| n + extra));
                        })
                        .submit()
                );
                items
                    .map(|item| item.expect("the channel's producer never fails"))
                    .next()
                    .expect("the callback sends one value")
            }
        }
    }
}

fn run_tree(workers: usize, capacity: usize, mut root: Node) {
    root.lane = 0; // the root is submitted to the pool itself
    for child in &mut root.children {
        assign(child, 0, 0);
    }
    let total = count(&root);
    let what = format!("workers {workers}, capacity {capacity}, tree {root:?}");
    let (ran, refused, skipped) = watchdog(&what, move || {
        let pool = Pool::builder()
            .max_workers(workers)
            .queue_capacity(capacity)
            .build()
            .unwrap();
        let world = World {
            lanes: Arc::new((0..8).map(|_| pool.lane()).collect()),
            pool: pool.clone(),
            ran: Arc::default(),
            refused: Arc::default(),
            skipped: Arc::default(),
        };
        let w = world.clone();
        let seen = pool
            .job(move || w.body(&root))
            .priority(Priority::Normal)
            .submit()
            .unwrap()
            .wait()
            .expect("the root job");
        assert!(seen >= 1);
        // Every job has run, or was let go (late jobs of the tree may still be finishing).
        eventually("every job has run", || {
            world.ran.load(Ordering::SeqCst) + world.skipped.load(Ordering::SeqCst) >= total
        });
        drop(world.lanes);
        pool.shutdown();
        assert_adds_up(pool.stats());
        (
            world.ran.load(Ordering::SeqCst),
            world.refused.load(Ordering::SeqCst),
            world.skipped.load(Ordering::SeqCst),
        )
    });
    assert_eq!(
        ran + skipped,
        total,
        "every job ran exactly once ({refused} waits refused, {skipped} jobs refused)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_nested_blocking_always_ends(
        workers in 1..=3usize,
        capacity in 1..=3usize,
        root in tree(),
    ) {
        run_tree(workers, capacity, root);
    }
}
