//! The app driven headless, through `egui::Context` alone (no window): type a query, get its
//! rows, start an import and cancel it — with every UI update under 2 ms while the database
//! and the pool work, and a repaint asked for by the work itself, never by a timer.
//!
//! The frame times are the app's own `ui` calls: taking what arrived and laying the window out
//! (not egui's tessellation nor the GPU's work, which a window adds whatever the app does).

use std::sync::mpsc;
use std::time::Duration;

use offthread_gui_example::{App, IMPORT_ROWS, ROWS, query_id};

/// Fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(120);

/// Waits for the next 60 Hz frame boundary, as a window's swap does: a UI thread runs in short
/// bursts, not without a pause.
fn vsync() {
    const FRAME_NS: u128 = 16_666_667;
    thread_local!(static START: std::time::Instant = std::time::Instant::now());
    let since = START.with(|s| s.elapsed()).as_nanos();
    let next = (since / FRAME_NS + 1) * FRAME_NS;
    std::thread::sleep(Duration::from_nanos((next - since) as u64));
}

/// One UI update with `events`.
fn frame(ctx: &egui::Context, app: &mut App, events: Vec<egui::Event>) {
    let input = egui::RawInput {
        events,
        ..Default::default()
    };
    let _ = ctx.run_ui(input, |ui| app.ui(ui));
}

/// Waits until the app's work asks for a repaint (what wakes a real window's event loop), then
/// updates the UI; until `done`.
fn frames_until(
    ctx: &egui::Context,
    app: &mut App,
    woken: &mpsc::Receiver<()>,
    what: &str,
    done: impl Fn(&App) -> bool,
) {
    while !done(app) {
        woken
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("never woken: {what}"));
        while woken.try_recv().is_ok() {} // one update for every wake so far
        vsync();
        frame(ctx, app, Vec::new());
    }
}

#[test]
fn typing_searches_and_an_import_cancels_without_a_slow_frame() {
    let dir = std::env::temp_dir().join(format!("offthread-gui-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ctx = egui::Context::default();
    let (wake, woken) = mpsc::channel();
    ctx.set_request_repaint_callback(move |_| {
        let _ = wake.send(());
    });
    let mut app = App::new(&ctx, &dir.join("items.db"), ROWS).unwrap();
    frame(&ctx, &mut app, Vec::new());
    ctx.memory_mut(|m| m.request_focus(query_id()));
    frame(&ctx, &mut app, Vec::new());

    // Two edits, back to back: "4242z" matches no row, so its read scans all 200,000 and is
    // still running when a backspace replaces it with "4242": that read is cancelled.
    frame(&ctx, &mut app, vec![egui::Event::Text("4242z".into())]);
    let backspace = egui::Event::Key {
        key: egui::Key::Backspace,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    };
    frame(&ctx, &mut app, vec![backspace]);
    assert_eq!(app.query, "4242");
    assert_eq!(app.searches_cancelled, 1);
    frames_until(&ctx, &mut app, &woken, "search results", |a| {
        a.settled_results().is_some_and(|r| !r.is_empty())
    });
    let rows = app.settled_results().unwrap();
    assert!(
        rows.iter().all(|(_, name)| name.contains("4242")),
        "{rows:?}"
    );
    assert_eq!(app.results_for.as_ref().unwrap().0, "4242");

    // A long import, cancelled half-way: rolled back.
    app.start_import();
    frames_until(&ctx, &mut app, &woken, "import progress", |a| {
        a.import_progress() > IMPORT_ROWS / 2
    });
    app.cancel_import();
    frames_until(&ctx, &mut app, &woken, "import end", |a| !a.importing());
    assert!(
        app.import_status.contains("rolled back"),
        "{}",
        app.import_status
    );

    // The first update is egui's own start (its font atlas), before any work was submitted.
    let updates = &app.frame_times[1..];
    let worst = updates.iter().max().copied().unwrap();
    println!(
        "{} UI updates after the first ({:.3} ms): worst {:.3} ms",
        updates.len(),
        app.frame_times[0].as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    assert!(
        worst < Duration::from_millis(2),
        "a UI update took {worst:?}"
    );
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}
