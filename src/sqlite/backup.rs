//! Online backup: [`Db::backup_to`] copies the database into a file while it keeps serving.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::{Call, Db, Error};

/// Pages copied per step: about a megabyte with SQLite's default page size.
const PAGES_PER_STEP: std::ffi::c_int = 256;

impl Db {
    /// Copies the database into the file at `path` while it keeps serving, with SQLite's
    /// online backup API, on a reader: writes go on meanwhile (in WAL mode a reader never
    /// holds the writer up), and the copy is the database as of the backup's start (one read
    /// transaction spans it, so writes never make it start over). It copies
    /// 256 pages per step and calls `progress(pages_copied, pages_total)` after each, on the
    /// reader's thread.
    ///
    /// The copy is written beside `path` under a temporary name and renamed into place once
    /// complete, so `path` never holds half a backup; an existing file there is replaced.
    /// [`Call::cancel`] stops it between two steps ([`Error::Interrupted`]) and removes the
    /// partial copy; like any read, it is cancelled if its `Call` is dropped before it starts.
    /// The copy is an ordinary SQLite database file (not in WAL mode).
    ///
    /// # Examples
    /// ```
    /// let dir = std::env::temp_dir().join(format!("offthread-doc-backup-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let db = offthread::sqlite::Db::open(dir.join("app.db"))?;
    /// db.execute("CREATE TABLE t (x)", ()).wait()?;
    /// db.execute("INSERT INTO t VALUES (42)", ()).wait()?;
    /// let mut steps = 0;
    /// db.backup_to(dir.join("copy.db"), move |_copied, _total| steps += 1).wait()?;
    /// let copy = offthread::sqlite::Db::open(dir.join("copy.db"))?;
    /// assert_eq!(copy.query_row::<i64, _>("SELECT x FROM t", ()).wait()?, 42);
    /// # db.close(); copy.close(); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup_to<P>(&self, path: impl AsRef<Path>, mut progress: P) -> Call<()>
    where
        P: FnMut(u64, u64) + Send + 'static,
    {
        let path = path.as_ref().to_owned();
        let job = move |source: &mut Connection| {
            let partial = partial_name(&path);
            let result = copy(source, &partial, &mut progress);
            match result {
                Ok(()) => std::fs::rename(&partial, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&partial);
                    Error::Open(format!("backup: renaming into {}: {e}", path.display()))
                }),
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    Err(e)
                }
            }
        };
        super::submit(self.reader_pool(), job, super::Mode::Read)
    }
}

/// Where the copy is written until it is complete.
fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".offthread-partial");
    path.with_file_name(name)
}

/// Copies `source` into a new database at `to`, step by step, inside one read transaction.
fn copy(source: &Connection, to: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
    let _ = std::fs::remove_file(to);
    let mut dest = Connection::open(to)?;
    // A read transaction over the whole copy: it sees one snapshot, which later writes (from
    // the writer's connection) leave alone, so no step has to start over.
    source.execute_batch("BEGIN")?;
    let copied = (|| {
        source.query_row("SELECT count(*) FROM sqlite_schema", (), |_| Ok(()))?;
        let backup = Backup::new(source, &mut dest)?;
        loop {
            if crate::is_cancelled() {
                return Err(Error::Interrupted);
            }
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let left = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(left), total);
            // `Busy` or `Locked`: another process holds a lock on the copy's file; try again.
            if step == StepResult::Done {
                return Ok(());
            }
        }
    })();
    let _ = source.execute_batch("COMMIT");
    copied
}
