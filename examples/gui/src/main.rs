//! The window: `cargo run --release -p offthread-gui-example`.
//!
//! `-- --screenshot shot.ppm` types a search, waits for its rows, saves the window as a PPM
//! image and exits (the README's screenshot is made this way, under Xvfb).

use std::path::PathBuf;

use offthread_gui_example::{App, ROWS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let screenshot = std::env::args()
        .skip_while(|a| a != "--screenshot")
        .nth(1)
        .map(PathBuf::from);
    let dir = std::env::temp_dir().join("offthread-gui-example");
    std::fs::create_dir_all(&dir)?;
    let db_path = dir.join("items.db");
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([760.0, 520.0]),
        ..Default::default()
    };
    eframe::run_native(
        "offthread: search, import, hash",
        options,
        Box::new(move |cc| {
            let app = App::new(&cc.egui_ctx, &db_path, ROWS)?;
            Ok(Box::new(Window {
                app,
                screenshot,
                stage: 0,
                saved: Default::default(),
            }))
        }),
    )?;
    Ok(())
}

struct Window {
    app: App,
    /// Where to save a screenshot, if asked.
    screenshot: Option<PathBuf>,
    /// How far the screenshot run is.
    stage: u8,
    /// The screenshot is saved.
    saved: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl eframe::App for Window {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app.ui(ui);
        let ctx = ui.ctx().clone();
        let Some(path) = self.screenshot.clone() else {
            return;
        };
        match self.stage {
            0 => {
                self.app.query = "4242".into();
                self.app.start_search();
                self.app
                    .start_hash(std::env::current_exe().unwrap_or_default());
                self.stage = 1;
            }
            1 if self.app.settled_results().is_some_and(|r| !r.is_empty()) && !self.app.busy() => {
                self.app.start_import();
                self.stage = 2;
            }
            2 if self.app.import_progress() > 100_000 => {
                let saved = self.saved.clone();
                let repaint = ctx.clone();
                let callback = egui::ScreenshotCallback::new(move |image| {
                    let mut ppm =
                        format!("P6\n{} {}\n255\n", image.size[0], image.size[1]).into_bytes();
                    for px in &image.pixels {
                        ppm.extend_from_slice(&[px.r(), px.g(), px.b()]);
                    }
                    if let Err(e) = std::fs::write(&path, ppm) {
                        eprintln!("could not save {}: {e}", path.display());
                    }
                    saved.store(true, std::sync::atomic::Ordering::Release);
                    repaint.request_repaint();
                });
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
                self.stage = 3;
            }
            3 if self.saved.load(std::sync::atomic::Ordering::Acquire) => {
                self.app.cancel_import();
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                self.stage = 4;
            }
            _ => {}
        }
    }
}
