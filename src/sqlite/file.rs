//! The writer's guard against a database file deleted or replaced while open.
//!
//! SQLite keeps writing to the file it opened. In WAL mode it does not notice when that file is
//! unlinked (or another file is renamed over it): every later write "succeeds" into a file no
//! one can open again, and is lost when the `Db` closes. So before each write call the writer
//! compares the path's file with the one it opened (one `stat`: no measurable change in a
//! write's round trip, which is tens of microseconds) and refuses the write with SQLite's own
//! code for this case, `SQLITE_READONLY_DBMOVED`.

use std::path::{Path, PathBuf};

use super::Error;

/// The writer's database file as it was opened.
pub(crate) struct DbFile {
    path: PathBuf,
    id: FileId,
}

#[derive(PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

fn file_id(path: &std::path::Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some(FileId {})
    }
}

impl DbFile {
    /// The file at `path`, which the writer has just opened; `None` if it cannot be looked at
    /// by that name (a URI, say). Any path works, UTF-8 or not.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        // Absolute, so a later change of the working directory cannot point it elsewhere.
        let path = std::path::absolute(path).ok()?;
        let id = file_id(&path)?;
        Some(Self { path, id })
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if file_id(&self.path).is_some_and(|id| id == self.id) {
            Ok(())
        } else {
            Err(moved(&self.path.display().to_string()))
        }
    }
}

/// The error of a write refused because its database file was deleted or replaced.
pub(crate) fn moved(path: &str) -> Error {
    Error::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY_DBMOVED),
        Some(format!(
            "the database file {path} was deleted or replaced while open; writes are refused \
             because they would be lost (close the Db and open it again)"
        )),
    ))
}
