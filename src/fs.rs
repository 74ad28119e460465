//! Filesystem calls that never block the caller: each runs on a pool and returns at once.
//!
//! The free functions ([`read`], [`write()`], …) run on the [`global`](crate::global) pool and
//! return a [`Handle`] to an [`io::Result`]: `.wait()??`, `.await??`, or `try_wait` each frame.
//! [`on`] names another pool and returns a [`JobBuilder`] instead, one call away from the
//! handle, so every option applies: priority, start deadline, inbox delivery, `try_submit`.
//!
//! Large files stream: [`read_chunks`] and [`read_lines`] read on a worker and hand the caller
//! chunks or lines through a bounded buffer ([`ReadStream`]), so memory stays bounded whatever
//! the file's size, and a slow consumer pauses the reader.
//!
//! **Errors** are the original `io::Error` kind, with the path in the message: `failed to read
//! `/no/such/file`: No such file or directory (os error 2)`. The original error (with its
//! `raw_os_error`) is the message's [`source`](std::error::Error::source). Nothing here panics
//! on a bad path.
//!
//! # Examples
//! ```
//! use offthread::fs;
//! let dir = std::env::temp_dir().join(format!("offthread-fs-doc-{}", std::process::id()));
//! fs::create_dir_all(&dir).wait()??;
//! fs::write(dir.join("a.txt"), "hello").wait()??;
//! assert_eq!(fs::read_to_string(dir.join("a.txt")).wait()??, "hello");
//!
//! let missing = fs::read(dir.join("missing")).wait()?.unwrap_err();
//! assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
//! assert!(missing.to_string().contains("missing"));
//! fs::remove_dir_all(&dir).wait()??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error;
use std::fmt;
use std::fs::{DirEntry, Metadata};
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::JobError;
use crate::global::global;
use crate::handle::{Handle, resolved};
use crate::options::JobBuilder;
use crate::pool::Pool;
use crate::stream;

/// A filesystem call, ready to submit: what [`Fs`]'s methods put in their [`JobBuilder`].
pub type Op<T> = Box<dyn FnOnce() -> io::Result<T> + Send + 'static>;

/// Items buffered by [`read_chunks`] and [`read_lines`] (the global-pool functions).
pub const DEFAULT_BUFFER: usize = 4;

/// Filesystem calls on a pool the caller names; see [`on`].
#[derive(Debug, Clone, Copy)]
pub struct Fs<'p> {
    pool: &'p Pool,
}

/// Filesystem calls on `pool`. Each method returns a [`JobBuilder`]: set options if you like,
/// then submit it to get the handle.
///
/// # Examples
/// ```
/// use offthread::{Pool, Priority, fs};
/// let pool = Pool::new();
/// let files = fs::on(&pool);
/// let meta = files
///     .metadata("Cargo.toml")
///     .priority(Priority::Interactive)
///     .try_submit()?   // never blocks the caller
///     .wait()??;
/// assert!(meta.is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn on(pool: &Pool) -> Fs<'_> {
    Fs { pool }
}

/// The error of a filesystem call: the original error, with the call and the path.
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    /// The second path of `copy` and `rename`.
    to: Option<PathBuf>,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} `{}`", self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " to `{}`", to.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `source` with the call and path, keeping its kind.
fn with_path(op: &'static str, path: &Path, to: Option<&Path>, source: io::Error) -> io::Error {
    let kind = source.kind();
    io::Error::new(
        kind,
        PathError {
            op,
            path: path.to_owned(),
            to: to.map(Path::to_owned),
            source,
        },
    )
}

/// Boxes a call on one path, wrapping its error.
fn op1<T>(
    op: &'static str,
    path: &Path,
    call: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
) -> Op<T> {
    let path = path.to_owned();
    Box::new(move || call(&path).map_err(|e| with_path(op, &path, None, e)))
}

/// Boxes a call on two paths, wrapping its error.
fn op2<T>(
    op: &'static str,
    from: &Path,
    to: &Path,
    call: impl FnOnce(&Path, &Path) -> io::Result<T> + Send + 'static,
) -> Op<T> {
    let (from, to) = (from.to_owned(), to.to_owned());
    Box::new(move || call(&from, &to).map_err(|e| with_path(op, &from, Some(&to), e)))
}

impl<'p> Fs<'p> {
    fn job<T>(&self, op: Op<T>) -> JobBuilder<'p, Pool, Op<T>> {
        self.pool.job(op)
    }

    /// Reads a whole file into memory ([`std::fs::read`]).
    pub fn read(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<Vec<u8>>> {
        self.job(op1("read", path.as_ref(), |p| std::fs::read(p)))
    }

    /// Reads a whole UTF-8 file into a `String` ([`std::fs::read_to_string`]); invalid UTF-8 is
    /// an [`io::ErrorKind::InvalidData`] error.
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<String>> {
        self.job(op1("read", path.as_ref(), |p| std::fs::read_to_string(p)))
    }

    /// Writes `contents` to a file, creating or truncating it ([`std::fs::write`]).
    pub fn write(
        &self,
        path: impl AsRef<Path>,
        contents: impl Into<Vec<u8>>,
    ) -> JobBuilder<'p, Pool, Op<()>> {
        let contents = contents.into();
        self.job(op1("write", path.as_ref(), move |p| {
            std::fs::write(p, contents)
        }))
    }

    /// A path's metadata, following symlinks ([`std::fs::metadata`]).
    pub fn metadata(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<Metadata>> {
        self.job(op1("read metadata of", path.as_ref(), |p| {
            std::fs::metadata(p)
        }))
    }

    /// A directory's entries, all read on the worker ([`std::fs::read_dir`], collected). The
    /// first error ends the listing and is returned.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<Vec<DirEntry>>> {
        self.job(op1("read directory", path.as_ref(), |p| {
            std::fs::read_dir(p)?.collect()
        }))
    }

    /// Copies a file's contents and permissions; returns the bytes copied ([`std::fs::copy`]).
    pub fn copy(
        &self,
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
    ) -> JobBuilder<'p, Pool, Op<u64>> {
        self.job(op2("copy", from.as_ref(), to.as_ref(), |a, b| {
            std::fs::copy(a, b)
        }))
    }

    /// Renames a file or directory, replacing `to` if it exists ([`std::fs::rename`]).
    pub fn rename(
        &self,
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
    ) -> JobBuilder<'p, Pool, Op<()>> {
        self.job(op2("rename", from.as_ref(), to.as_ref(), |a, b| {
            std::fs::rename(a, b)
        }))
    }

    /// Removes a file ([`std::fs::remove_file`]).
    pub fn remove_file(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<()>> {
        self.job(op1("remove", path.as_ref(), |p| std::fs::remove_file(p)))
    }

    /// Removes a directory and everything in it ([`std::fs::remove_dir_all`]).
    pub fn remove_dir_all(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<()>> {
        self.job(op1("remove directory", path.as_ref(), |p| {
            std::fs::remove_dir_all(p)
        }))
    }

    /// Creates a directory and any missing parents ([`std::fs::create_dir_all`]).
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> JobBuilder<'p, Pool, Op<()>> {
        self.job(op1("create directory", path.as_ref(), |p| {
            std::fs::create_dir_all(p)
        }))
    }

    /// Streams a file in chunks of `chunk_size` bytes (the last may be shorter), with at most
    /// `buffer` chunks read ahead; see [`ReadStream`]. Memory stays about
    /// `(buffer + 2) × chunk_size` whatever the file's size. A `chunk_size` of 0 is an
    /// [`io::ErrorKind::InvalidInput`] error item. Waits for room in the pool's queue like
    /// [`Pool::submit`].
    pub fn read_chunks(&self, path: impl AsRef<Path>, chunk_size: usize, buffer: usize) -> Chunks {
        let path = path.as_ref().to_owned();
        start(self.pool, buffer, move |out| {
            send_chunks(&path, chunk_size, out)
        })
    }

    /// Streams a UTF-8 text file line by line (without the line endings), with at most
    /// `buffer` lines read ahead; see [`ReadStream`]. Waits for room in the pool's queue like
    /// [`Pool::submit`].
    pub fn read_lines(&self, path: impl AsRef<Path>, buffer: usize) -> Lines {
        let path = path.as_ref().to_owned();
        start(self.pool, buffer, move |out| send_lines(&path, out))
    }
}

/// Starts a reading producer on `pool`; a refused one becomes a stream of one error.
fn start<T: Send + 'static>(
    pool: &Pool,
    buffer: usize,
    producer: impl FnOnce(&mut stream::Sender<io::Result<T>>) + Send + 'static,
) -> ReadStream<T> {
    let items = pool
        .stream(buffer, producer)
        .unwrap_or_else(|_| stream::Receiver::failed(JobError::ShutDown));
    ReadStream { items }
}

/// The most a chunk's buffer is given up front (bytes).
const PREALLOC_LIMIT: usize = 4 << 20;

fn send_chunks(path: &Path, chunk_size: usize, out: &mut stream::Sender<io::Result<Vec<u8>>>) {
    let fail = |out: &mut stream::Sender<_>, e| {
        let _ = out.send(Err(with_path("read", path, None, e)));
    };
    if chunk_size == 0 {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "chunk_size must be at least 1");
        return fail(out, e);
    }
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return fail(out, e),
    };
    loop {
        // Allocated as it fills past a few MiB: a huge `chunk_size` costs what the file holds,
        // not what was asked for.
        let mut chunk = Vec::with_capacity(chunk_size.min(PREALLOC_LIMIT));
        match (&mut file).take(chunk_size as u64).read_to_end(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {
                if out.send(Ok(chunk)).is_err() {
                    return; // the consumer is gone
                }
            }
            Err(e) => return fail(out, e),
        }
    }
}

fn send_lines(path: &Path, out: &mut stream::Sender<io::Result<String>>) {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            let _ = out.send(Err(with_path("read", path, None, e)));
            return;
        }
    };
    for line in io::BufReader::new(file).lines() {
        let failed = line.is_err();
        let item = line.map_err(|e| with_path("read", path, None, e));
        if out.send(item).is_err() || failed {
            return;
        }
    }
}

/// A file read on a worker, consumed in pieces (chunks or lines) through a bounded buffer: a
/// blocking [`Iterator`], an async [`Stream`](futures_core::Stream), or
/// [`try_next`](Self::try_next) from a frame loop.
///
/// Each item is `Ok(piece)`, or an `Err` that ends the stream: the read's own error (with the
/// path), or the pool's if the reader never ran or panicked (kind
/// [`Other`](io::ErrorKind::Other), the [`JobError`] as its source). Dropping the stream stops
/// the reader at its next piece and frees its worker.
///
/// # Examples
/// ```
/// let mut total = 0;
/// for chunk in offthread::fs::read_chunks("Cargo.toml", 64) {
///     total += chunk?.len();
/// }
/// assert_eq!(total as u64, std::fs::metadata("Cargo.toml")?.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the stream stops the reader at its next piece"]
pub struct ReadStream<T> {
    items: stream::Receiver<io::Result<T>>,
}

/// A file in chunks: [`read_chunks`].
pub type Chunks = ReadStream<Vec<u8>>;

/// A text file in lines: [`read_lines`].
pub type Lines = ReadStream<String>;

fn flatten<T>(item: Result<io::Result<T>, JobError>) -> io::Result<T> {
    item.unwrap_or_else(|e| Err(io::Error::other(e)))
}

impl<T> ReadStream<T> {
    /// Takes the next piece if one is ready; never blocks. `None`: nothing ready yet, or the
    /// stream has ended ([`is_finished`](Self::is_finished) tells which).
    pub fn try_next(&mut self) -> Option<io::Result<T>> {
        self.items.try_next().map(flatten)
    }

    /// `true` once the reader has ended and every piece has been taken.
    pub fn is_finished(&self) -> bool {
        self.items.is_finished()
    }
}

impl<T> Iterator for ReadStream<T> {
    type Item = io::Result<T>;

    /// Blocks until the next piece is read, or returns `None` at the end of the file.
    fn next(&mut self) -> Option<io::Result<T>> {
        self.items.next().map(flatten)
    }
}

impl<T> futures_core::Stream for ReadStream<T> {
    type Item = io::Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<T>>> {
        Pin::new(&mut self.items)
            .poll_next(cx)
            .map(|item| item.map(flatten))
    }
}

impl<T> fmt::Debug for ReadStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadStream")
            .field("items", &self.items)
            .finish()
    }
}

/// Submits `op` to the global pool; a shut-down global pool resolves `ShutDown`.
fn global_op<T: Send + 'static>(op: Op<T>) -> Handle<io::Result<T>> {
    global()
        .submit(op)
        .unwrap_or_else(|_| resolved(Err(JobError::ShutDown)))
}

/// Reads a whole file, on the global pool; see [`Fs::read`].
pub fn read(path: impl AsRef<Path>) -> Handle<io::Result<Vec<u8>>> {
    global_op(op1("read", path.as_ref(), |p| std::fs::read(p)))
}

/// Reads a whole UTF-8 file, on the global pool; see [`Fs::read_to_string`].
pub fn read_to_string(path: impl AsRef<Path>) -> Handle<io::Result<String>> {
    global_op(op1("read", path.as_ref(), |p| std::fs::read_to_string(p)))
}

/// Writes a file, on the global pool; see [`Fs::write`].
pub fn write(path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) -> Handle<io::Result<()>> {
    let contents = contents.into();
    global_op(op1("write", path.as_ref(), move |p| {
        std::fs::write(p, contents)
    }))
}

/// A path's metadata, on the global pool; see [`Fs::metadata`].
pub fn metadata(path: impl AsRef<Path>) -> Handle<io::Result<Metadata>> {
    global_op(op1("read metadata of", path.as_ref(), |p| {
        std::fs::metadata(p)
    }))
}

/// A directory's entries, on the global pool; see [`Fs::read_dir`].
pub fn read_dir(path: impl AsRef<Path>) -> Handle<io::Result<Vec<DirEntry>>> {
    global_op(op1("read directory", path.as_ref(), |p| {
        std::fs::read_dir(p)?.collect()
    }))
}

/// Copies a file, on the global pool; see [`Fs::copy`].
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Handle<io::Result<u64>> {
    global_op(op2("copy", from.as_ref(), to.as_ref(), |a, b| {
        std::fs::copy(a, b)
    }))
}

/// Renames a file or directory, on the global pool; see [`Fs::rename`].
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Handle<io::Result<()>> {
    global_op(op2("rename", from.as_ref(), to.as_ref(), |a, b| {
        std::fs::rename(a, b)
    }))
}

/// Removes a file, on the global pool; see [`Fs::remove_file`].
pub fn remove_file(path: impl AsRef<Path>) -> Handle<io::Result<()>> {
    global_op(op1("remove", path.as_ref(), |p| std::fs::remove_file(p)))
}

/// Removes a directory tree, on the global pool; see [`Fs::remove_dir_all`].
pub fn remove_dir_all(path: impl AsRef<Path>) -> Handle<io::Result<()>> {
    global_op(op1("remove directory", path.as_ref(), |p| {
        std::fs::remove_dir_all(p)
    }))
}

/// Creates a directory and its parents, on the global pool; see [`Fs::create_dir_all`].
pub fn create_dir_all(path: impl AsRef<Path>) -> Handle<io::Result<()>> {
    global_op(op1("create directory", path.as_ref(), |p| {
        std::fs::create_dir_all(p)
    }))
}

/// Streams a file in chunks of `chunk_size` bytes on the global pool, with
/// [`DEFAULT_BUFFER`] chunks read ahead; see [`Fs::read_chunks`].
pub fn read_chunks(path: impl AsRef<Path>, chunk_size: usize) -> Chunks {
    on(global()).read_chunks(path, chunk_size, DEFAULT_BUFFER)
}

/// Streams a text file line by line on the global pool, with [`DEFAULT_BUFFER`] lines read
/// ahead; see [`Fs::read_lines`].
pub fn read_lines(path: impl AsRef<Path>) -> Lines {
    on(global()).read_lines(path, DEFAULT_BUFFER)
}
