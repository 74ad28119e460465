//! The global pool, in its own test binary (its own process) so nothing else touches it.
use offthread::{JobError, global, run};

/// The stats count a job just after its handle resolves; wait for that (bounded).
fn eventually_counted() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while global().stats().completed < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "completions never counted"
        );
        std::thread::yield_now();
    }
}

#[test]
fn run_uses_one_lazily_built_global_pool() {
    assert_eq!(run(|| 1 + 1).wait(), Ok(2));
    let name = run(|| std::thread::current().name().unwrap().to_owned())
        .wait()
        .unwrap();
    assert!(name.starts_with("offthread-global-"), "{name}");
    assert!(std::ptr::eq(global(), global()));
    eventually_counted();
    // After shutdown, run never panics: its handle resolves ShutDown at once.
    global().shutdown();
    assert_eq!(run(|| 3).wait(), Err(JobError::ShutDown));
}
