//! Walks a directory tree and hashes every file through the pool, from a loop that never
//! blocks: listings and hashes come back through two inboxes, at most 64 jobs are in flight,
//! and a progress line updates as results arrive. Then the same walk runs directly, serially,
//! for comparison.
//!
//! Run: `cargo run --release --example files [DIR]` (default: the current directory).

use std::collections::VecDeque;
use std::fs::DirEntry;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use offthread::{Inbox, Pool, TrySubmitError, fs};

const IN_FLIGHT: usize = 64;

/// FNV-1a, 64-bit: a small, dependency-free hash that is plenty to tell files apart here.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Hashes one file in 64 KiB pieces (on whichever thread calls it): (hash, length).
fn hash_file(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut h, mut len) = (FNV_START, 0u64);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((h, len));
        }
        h = fnv1a(h, &buf[..n]);
        len += n as u64;
    }
}

#[derive(Default)]
struct Totals {
    dirs: u64,
    files: u64,
    bytes: u64,
    errors: u64,
    /// Order-independent digest of (path, hash) over all files.
    digest: u64,
}

impl Totals {
    fn add_file(&mut self, path: &Path, hash: u64, len: u64) {
        self.files += 1;
        self.bytes += len;
        self.digest ^= fnv1a(hash, path.to_string_lossy().as_bytes());
    }
}

/// The walk through the pool: a loop that only ever submits with `try_submit` and drains.
fn walk_offthread(root: &Path) -> Totals {
    let pool = Pool::new();
    let files = fs::on(&pool);
    let listings: Inbox<io::Result<Vec<DirEntry>>, PathBuf> = Inbox::new(IN_FLIGHT);
    let hashes: Inbox<io::Result<(u64, u64)>, PathBuf> = Inbox::new(IN_FLIGHT);
    let mut dirs_todo = VecDeque::from([root.to_owned()]);
    let mut files_todo: VecDeque<PathBuf> = VecDeque::new();
    let mut totals = Totals::default();
    let mut last_print = Instant::now();
    loop {
        // Submit what the inboxes have room for; a full inbox refuses and hands the job back.
        while let Some(dir) = dirs_todo.pop_front() {
            match files
                .read_dir(&dir)
                .inbox(&listings, dir.clone())
                .try_submit()
            {
                Ok(_ticket) => {}
                Err(TrySubmitError::Full(_)) => {
                    dirs_todo.push_front(dir);
                    break;
                }
                Err(TrySubmitError::ShutDown(_)) => unreachable!("the pool is ours"),
            }
        }
        while let Some(path) = files_todo.pop_front() {
            let p = path.clone();
            match pool
                .job(move || hash_file(&p))
                .inbox(&hashes, path.clone())
                .try_submit()
            {
                Ok(_ticket) => {}
                Err(_) => {
                    files_todo.push_front(path);
                    break;
                }
            }
        }
        // Take what has arrived.
        for (dir, listing) in listings.drain() {
            on_listing(&dir, listing, &mut totals, &mut dirs_todo, &mut files_todo);
        }
        for (path, hashed) in hashes.drain() {
            on_hash(&path, hashed, &mut totals);
        }
        let in_flight = listings.in_flight() + hashes.in_flight();
        if last_print.elapsed() > Duration::from_millis(50) {
            print_progress(&totals, in_flight);
            last_print = Instant::now();
        }
        if in_flight == 0 && dirs_todo.is_empty() && files_todo.is_empty() {
            break;
        }
        // A GUI would draw a frame here; this loop waits up to 1 ms for the next result instead.
        if hashes.in_flight() > 0 {
            if let Some((path, hashed)) = hashes.recv_timeout(Duration::from_millis(1)) {
                on_hash(&path, hashed, &mut totals);
            }
        } else if let Some((dir, listing)) = listings.recv_timeout(Duration::from_millis(1)) {
            on_listing(&dir, listing, &mut totals, &mut dirs_todo, &mut files_todo);
        }
    }
    print_progress(&totals, 0);
    println!();
    totals
}

type Listing = offthread::Outcome<io::Result<Vec<DirEntry>>>;

/// A directory listing arrived: queue its subdirectories and files.
fn on_listing(
    dir: &Path,
    listing: Listing,
    totals: &mut Totals,
    dirs_todo: &mut VecDeque<PathBuf>,
    files_todo: &mut VecDeque<PathBuf>,
) {
    totals.dirs += 1;
    match listing.expect("the job ran") {
        Ok(entries) => {
            for entry in entries {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs_todo.push_back(entry.path()),
                    Ok(t) if t.is_file() => files_todo.push_back(entry.path()),
                    Ok(_) => {} // symlinks and the like: skipped
                    Err(_) => totals.errors += 1,
                }
            }
        }
        Err(e) => {
            totals.errors += 1;
            eprintln!("\n{}: {e}", dir.display());
        }
    }
}

/// A file's hash arrived.
fn on_hash(path: &Path, hashed: offthread::Outcome<io::Result<(u64, u64)>>, totals: &mut Totals) {
    match hashed.expect("the job ran") {
        Ok((hash, len)) => totals.add_file(path, hash, len),
        Err(_) => totals.errors += 1,
    }
}

fn print_progress(t: &Totals, in_flight: usize) {
    print!(
        "\r{:>7} dirs {:>8} files {:>10.1} MiB hashed {:>4} in flight {:>4} errors",
        t.dirs,
        t.files,
        t.bytes as f64 / (1024.0 * 1024.0),
        in_flight,
        t.errors
    );
    let _ = io::stdout().flush();
}

/// The same walk, serially, on this thread.
fn walk_direct(root: &Path) -> Totals {
    let mut totals = Totals::default();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        totals.dirs += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            totals.errors += 1;
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(entry.path()),
                Ok(t) if t.is_file() => match hash_file(&entry.path()) {
                    Ok((hash, len)) => totals.add_file(&entry.path(), hash, len),
                    Err(_) => totals.errors += 1,
                },
                Ok(_) => {}
                Err(_) => totals.errors += 1,
            }
        }
    }
    totals
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    println!(
        "hashing every file under {} through offthread:",
        root.display()
    );
    let t = Instant::now();
    let ours = walk_offthread(&root);
    let ours_time = t.elapsed();
    let t = Instant::now();
    let direct = walk_direct(&root);
    let direct_time = t.elapsed();
    println!(
        "offthread: {} files, {:.1} MiB in {ours_time:.2?} (digest {:016x})",
        ours.files,
        ours.bytes as f64 / (1024.0 * 1024.0),
        ours.digest
    );
    println!(
        "direct:    {} files, {:.1} MiB in {direct_time:.2?} (digest {:016x})",
        direct.files,
        direct.bytes as f64 / (1024.0 * 1024.0),
        direct.digest
    );
    if (ours.files, ours.digest) == (direct.files, direct.digest) {
        println!("same files, same digest");
    } else {
        println!("the tree changed between the two walks (or a file could not be read)");
    }
}
