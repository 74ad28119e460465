//! The global pool, in its own test binary (its own process) so nothing else touches it.
use offthread::{JobError, global, run};

#[test]
fn run_uses_one_lazily_built_global_pool() {
    assert_eq!(run(|| 1 + 1).wait(), Ok(2));
    let name = run(|| std::thread::current().name().unwrap().to_owned())
        .wait()
        .unwrap();
    assert!(name.starts_with("offthread-global-"), "{name}");
    assert!(std::ptr::eq(global(), global()));
    assert_eq!(global().stats().completed >= 1, true);
    // After shutdown, run never panics: its handle resolves ShutDown at once.
    global().shutdown();
    assert_eq!(run(|| 3).wait(), Err(JobError::ShutDown));
}
