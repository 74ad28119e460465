//! A desktop app on offthread: search a 200,000-row SQLite database as you type, run a long
//! import with a progress bar and a cancel button, hash a file, and show what the threads do —
//! while the UI thread only submits and looks.
//!
//! The UI never asks for a repaint on a timer. It repaints when something it waits on is ready:
//! a database call's future wakes it (the waker asks egui for a repaint), and so does the
//! inbox that the pool's jobs deliver to (its wake hook fires once per batch). The app's
//! threads run at [`WorkerPriority::Low`], so waking one never costs the UI thread its CPU.
//!
//! The UI logic needs egui alone; `main.rs` puts it in a window with eframe.

use std::future::{Future, IntoFuture};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use offthread::sqlite::{CallFuture, Db, Error};
use offthread::{Inbox, Pool, WorkerPriority};

/// Rows in the demo database.
pub const ROWS: i64 = 200_000;
/// Rows an import adds, in transactions of `IMPORT_BATCH`.
pub const IMPORT_ROWS: u64 = 400_000;
const IMPORT_BATCH: u64 = 4_000;
/// Results shown for a search.
const LIMIT: i64 = 20;

/// Asks egui for a repaint: the waker of every future the UI polls.
struct Repaint(egui::Context);

impl Wake for Repaint {
    fn wake(self: Arc<Self>) {
        self.0.request_repaint();
    }
}

/// What the pool's jobs deliver to the inbox.
enum Delivered {
    Hash(std::io::Result<(u64, u64)>),
}

/// A search in flight: its query and the read's future.
struct Search {
    query: String,
    started: Instant,
    call: CallFuture<Vec<(i64, String)>>,
}

/// An import in flight.
struct Import {
    call: CallFuture<u64>,
    done: Arc<AtomicU64>,
}

/// The app: its database, its pool, and what the UI shows.
pub struct App {
    db: Db,
    pool: Pool,
    inbox: Inbox<Delivered>,
    waker: Waker,
    /// The search box's text.
    pub query: String,
    search: Option<Search>,
    /// The rows shown, and the query they answer.
    pub results: Vec<(i64, String)>,
    /// The query that `results` answer, and how long it took.
    pub results_for: Option<(String, Duration)>,
    /// Searches replaced by a newer one before they ended.
    pub searches_cancelled: u64,
    import: Option<Import>,
    /// The last import's outcome, in words.
    pub import_status: String,
    hash_path: String,
    hashing: bool,
    /// The last hash's outcome, in words.
    pub hash_status: String,
    /// How long the last few UI updates took (the app's own `ui` call).
    pub frame_times: Vec<Duration>,
}

impl App {
    /// Opens (and, the first time, fills) the database at `path`, with `rows` rows, on
    /// threads that run at low priority. The UI's context gets repaint requests from the
    /// app's work.
    ///
    /// # Errors
    /// The database could not be opened or filled.
    pub fn new(ctx: &egui::Context, path: &Path, rows: i64) -> Result<Self, Error> {
        let db = Db::builder(path)
            .worker_priority(WorkerPriority::Low)
            .init(move |c| fill(c, rows))
            .open()?;
        let pool = Pool::builder()
            .worker_priority(WorkerPriority::Low)
            .build()
            .map_err(|e| Error::Open(e.to_string()))?;
        let repaint = ctx.clone();
        let inbox = Inbox::with_wake(16, move || repaint.request_repaint());
        Ok(Self {
            db,
            pool,
            inbox,
            waker: Waker::from(Arc::new(Repaint(ctx.clone()))),
            query: String::new(),
            search: None,
            results: Vec::new(),
            results_for: None,
            searches_cancelled: 0,
            import: None,
            import_status: "no import yet".into(),
            hash_path: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            hashing: false,
            hash_status: String::new(),
            frame_times: Vec::new(),
        })
    }

    /// `true` while a search, an import or a hash is in flight.
    pub fn busy(&self) -> bool {
        self.search.is_some() || self.import.is_some() || self.hashing
    }

    /// One UI update: takes what has arrived, then lays the window out.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let start = Instant::now();
        self.take_arrivals();
        if self.frame_times.is_empty() {
            warm_glyphs(ui);
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("offthread: a UI thread that never waits");
            self.search_ui(ui);
            ui.separator();
            self.import_ui(ui);
            ui.separator();
            self.hash_ui(ui);
            ui.separator();
            self.status_ui(ui);
        });
        self.frame_times.push(start.elapsed());

        if self.frame_times.len() > 600 {
            self.frame_times.drain(..300);
        }
    }

    /// Looks at every future and the inbox once; never waits.
    fn take_arrivals(&mut self) {
        let mut cx = Context::from_waker(&self.waker);
        if let Some(search) = &mut self.search
            && let Poll::Ready(result) = Pin::new(&mut search.call).poll(&mut cx)
        {
            let search = self.search.take().expect("polled above");
            match result {
                Ok(rows) => {
                    self.results = rows;
                    self.results_for = Some((search.query, search.started.elapsed()));
                }
                // A read replaced by a newer one: its result is nobody's.
                Err(Error::Interrupted | Error::Cancelled) => {}
                Err(e) => self.results_for = Some((format!("error: {e}"), Duration::ZERO)),
            }
        }
        if let Some(import) = &mut self.import
            && let Poll::Ready(result) = Pin::new(&mut import.call).poll(&mut cx)
        {
            self.import = None;
            self.import_status = match result {
                Ok(n) => format!("imported {n} rows"),
                Err(Error::Other(e)) => format!("{e}: rolled back, nothing imported"),
                Err(e) => format!("import failed: {e}"),
            };
        }
        for ((), outcome) in self.inbox.drain() {
            match outcome {
                Ok(Delivered::Hash(Ok((hash, bytes)))) => {
                    self.hash_status = format!("{hash:016x} ({bytes} bytes)");
                }
                Ok(Delivered::Hash(Err(e))) => self.hash_status = format!("error: {e}"),
                Err(e) => self.hash_status = format!("job failed: {e}"),
            }
            self.hashing = false;
        }
    }

    fn search_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("Search names:");
            let edit = ui.add(
                egui::TextEdit::singleline(&mut self.query)
                    .id(query_id())
                    .hint_text("type, e.g. 4242"),
            );
            if edit.changed() {
                self.start_search();
            }
            if self.search.is_some() {
                ui.spinner();
            }
        });
        match &self.results_for {
            Some((q, took)) => ui.label(format!(
                "{} rows for '{q}' in {:.1} ms ({} earlier searches cancelled)",
                self.results.len(),
                took.as_secs_f64() * 1e3,
                self.searches_cancelled
            )),
            None => ui.label("no search yet"),
        };
        egui::ScrollArea::vertical()
            .max_height(160.0)
            .show(ui, |ui| {
                for (id, name) in &self.results {
                    ui.monospace(format!("{id:>7}  {name}"));
                }
            });
    }

    /// Starts a search for the current query, cancelling the one in flight (its read is
    /// interrupted if it runs).
    pub fn start_search(&mut self) {
        if let Some(mut old) = self.search.take() {
            old.call.cancel();
            self.searches_cancelled += 1;
        }
        let query = self.query.clone();
        let pattern = format!("%{query}%");
        let call = self.db.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, name FROM items WHERE name LIKE ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map((pattern, LIMIT), |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        });
        self.search = Some(Search {
            query,
            started: Instant::now(),
            call: call.into_future(),
        });
    }

    fn import_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| match &mut self.import {
            None => {
                if ui.button("Import 400,000 rows").clicked() {
                    self.start_import();
                }
                ui.label(&self.import_status);
            }
            Some(import) => {
                let done = import.done.load(Ordering::Relaxed);
                ui.add(
                    egui::ProgressBar::new(done as f32 / IMPORT_ROWS as f32)
                        .text(format!("{done} / {IMPORT_ROWS}"))
                        .desired_width(240.0),
                );
                if ui.button("Cancel").clicked() {
                    self.cancel_import();
                }
            }
        });
    }

    /// Starts the import: one transaction on the writer, which reports its progress and asks
    /// for a repaint every batch, and rolls back if cancelled.
    pub fn start_import(&mut self) {
        let done = Arc::new(AtomicU64::new(0));
        let progress = done.clone();
        let waker = self.waker.clone();
        let call = self.db.transaction_any(move |tx| {
            let mut insert = tx.prepare_cached("INSERT INTO imported (name) VALUES (?1)")?;
            for n in 0..IMPORT_ROWS {
                insert.execute((format!("imported {n}"),))?;
                if (n + 1) % IMPORT_BATCH == 0 {
                    progress.store(n + 1, Ordering::Relaxed);
                    waker.wake_by_ref();
                    if offthread::is_cancelled() {
                        return Err("import cancelled".into());
                    }
                }
            }
            Ok(IMPORT_ROWS)
        });
        self.import = Some(Import {
            call: call.into_future(),
            done,
        });
    }

    /// Cancels the import in flight: it stops at its next batch and rolls back.
    pub fn cancel_import(&mut self) {
        if let Some(import) = &mut self.import {
            import.call.cancel();
        }
    }

    /// `true` while an import runs.
    pub fn importing(&self) -> bool {
        self.import.is_some()
    }

    /// Rows the import in flight has written so far (uncommitted).
    pub fn import_progress(&self) -> u64 {
        self.import
            .as_ref()
            .map_or(0, |i| i.done.load(Ordering::Relaxed))
    }

    fn hash_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("File:");
            ui.add(egui::TextEdit::singleline(&mut self.hash_path).desired_width(320.0));
            if ui
                .add_enabled(!self.hashing, egui::Button::new("Hash"))
                .clicked()
            {
                self.start_hash(PathBuf::from(&self.hash_path));
            }
            if self.hashing {
                ui.spinner();
            }
            ui.monospace(&self.hash_status);
        });
    }

    /// Hashes a file (FNV-1a) on a worker, from chunks that `offthread::fs` streams.
    pub fn start_hash(&mut self, path: PathBuf) {
        let pool = self.pool.clone();
        let job = move || {
            let mut hash = Fnv1a::default();
            let mut bytes = 0;
            for chunk in offthread::fs::on(&pool).read_chunks(&path, 256 * 1024, 2) {
                let chunk = chunk?;
                bytes += chunk.len() as u64;
                hash.write(&chunk);
            }
            Ok((hash.finish(), bytes))
        };
        let job = move || Delivered::Hash(job());
        if self
            .pool
            .job(job)
            .inbox(&self.inbox, ())
            .try_submit()
            .is_ok()
        {
            self.hashing = true;
        } else {
            self.hash_status = "busy: try again".into();
        }
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let pool = self.pool.stats();
        let db = self.db.stats();
        let readers = db.readers.map_or(0, |r| r.workers);
        let last = self.frame_times.last().copied().unwrap_or_default();
        ui.small(format!(
            "pool: {} threads, {} running, {} queued | db: writer {} queued, {readers} readers, {} reads done | last UI update {:.2} ms",
            pool.workers,
            pool.running,
            pool.queued,
            db.writer.queued,
            db.readers.map_or(0, |r| r.completed),
            last.as_secs_f64() * 1e3,
        ));
    }

    /// The outcome of the last search, for tests: the rows, or `None` while one runs.
    pub fn settled_results(&self) -> Option<&[(i64, String)]> {
        self.search.is_none().then_some(self.results.as_slice())
    }
}

/// Lays out every printable ASCII character, invisibly, in each font the app uses: egui
/// draws a glyph into its font atlas the first time it is shown at each of four sub-pixel
/// offsets, and a frame that shows many new rows would otherwise pay for that. Each glyph is laid
/// out after 0 to 3 leading characters, which puts it at different sub-pixel offsets.
fn warm_glyphs(ui: &egui::Ui) {
    let ascii: String = (' '..='~').collect();
    for style in [
        egui::TextStyle::Heading,
        egui::TextStyle::Body,
        egui::TextStyle::Monospace,
        egui::TextStyle::Button,
        egui::TextStyle::Small,
    ] {
        let font = style.resolve(ui.style());
        for lead in ["", "0", "00", "000"] {
            ui.painter().text(
                egui::Pos2::ZERO,
                egui::Align2::LEFT_TOP,
                format!("{lead}{ascii}"),
                font.clone(),
                egui::Color32::TRANSPARENT,
            );
        }
    }
}

/// The search box's id: give it the focus to type into it.
pub fn query_id() -> egui::Id {
    egui::Id::unique("offthread-gui-example/query")
}

/// Fills an empty database with `rows` named items (once: later opens find them).
fn fill(c: &mut offthread::sqlite::rusqlite::Connection, rows: i64) -> Result<(), Error> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS imported (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    )?;
    let have: i64 = c.query_row("SELECT count(*) FROM items", (), |r| r.get(0))?;
    let tx = c.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO items (id, name) VALUES (?1, ?2)")?;
        for id in have + 1..=rows {
            insert.execute((id, format!("item {id} {}", WORDS[(id % 7) as usize])))?;
        }
    }
    tx.commit()?;
    Ok(())
}

const WORDS: [&str; 7] = [
    "apple", "birch", "cedar", "delta", "ember", "fjord", "grove",
];

/// FNV-1a, 64 bits: a small hash for the demo (not a cryptographic one).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
