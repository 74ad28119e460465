//! `offthread::fs` against a temp dir: every helper, on the global pool and on a named one, and
//! the errors a real program meets (missing file, permission denied, a directory where a file
//! is expected, non-UTF-8 text), plus chunked and line streams.
mod common;
use common::*;
use offthread::{Pool, fs};
use std::error::Error;
use std::io::{self, ErrorKind};

/// The original `io::Error` behind one of ours.
fn original(e: &io::Error) -> &io::Error {
    e.source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("the original error is the source")
}

#[test]
fn every_helper_works_on_the_global_pool() {
    let dir = TempDir::new("fs-global");
    let sub = dir.join("a/b");
    fs::create_dir_all(&sub).wait().unwrap().unwrap();
    let f = sub.join("f.txt");
    fs::write(&f, "hello").wait().unwrap().unwrap();
    assert_eq!(fs::read(&f).wait().unwrap().unwrap(), b"hello");
    assert_eq!(fs::read_to_string(&f).wait().unwrap().unwrap(), "hello");
    assert_eq!(fs::metadata(&f).wait().unwrap().unwrap().len(), 5);
    let g = sub.join("g.txt");
    assert_eq!(fs::copy(&f, &g).wait().unwrap().unwrap(), 5);
    let h = sub.join("h.txt");
    fs::rename(&g, &h).wait().unwrap().unwrap();
    let mut names: Vec<_> = fs::read_dir(&sub)
        .wait()
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["f.txt", "h.txt"]);
    fs::remove_file(&h).wait().unwrap().unwrap();
    assert!(!h.exists());
    fs::remove_dir_all(dir.join("a")).wait().unwrap().unwrap();
    assert!(!dir.join("a").exists());
}

/// Submits a file call of `fs::on(&pool)` and waits for its value.
fn done<F, T>(call: offthread::JobBuilder<'_, Pool, F>) -> T
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    call.submit().unwrap().wait().unwrap().unwrap()
}

#[test]
fn every_helper_works_on_a_named_pool_with_options() {
    let pool = Pool::builder().thread_name("files").build().unwrap();
    let files = fs::on(&pool);
    let dir = TempDir::new("fs-named");
    let f = dir.join("x.bin");
    done(files.write(&f, vec![1u8, 2, 3]));
    let data = files
        .read(&f)
        .priority(offthread::Priority::Interactive)
        .try_submit()
        .unwrap()
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(data, [1, 2, 3]);
    let inbox = offthread::Inbox::new(4);
    files.metadata(&f).inbox(&inbox, "meta").submit().unwrap();
    let (key, meta) = inbox.recv().unwrap();
    assert_eq!((key, meta.unwrap().unwrap().len()), ("meta", 3));
    done(files.create_dir_all(dir.join("d")));
    done(files.copy(&f, dir.join("d/y.bin")));
    done(files.rename(dir.join("d/y.bin"), dir.join("d/z.bin")));
    assert_eq!(done(files.read_dir(dir.join("d"))).len(), 1);
    done(files.remove_file(dir.join("d/z.bin")));
    done(files.remove_dir_all(dir.join("d")));
    assert_eq!(done(files.read_to_string(&f)), "\u{1}\u{2}\u{3}");
}

#[test]
fn a_missing_file_is_not_found_with_its_path_and_the_os_error() {
    let dir = TempDir::new("fs-missing");
    let missing = dir.join("nope.txt");
    for err in [
        fs::read(&missing).wait().unwrap().unwrap_err(),
        fs::read_to_string(&missing)
            .wait()
            .unwrap()
            .map(drop)
            .unwrap_err(),
        fs::metadata(&missing)
            .wait()
            .unwrap()
            .map(drop)
            .unwrap_err(),
        fs::remove_file(&missing).wait().unwrap().unwrap_err(),
        fs::copy(&missing, dir.join("to"))
            .wait()
            .unwrap()
            .map(drop)
            .unwrap_err(),
        fs::rename(&missing, dir.join("to"))
            .wait()
            .unwrap()
            .unwrap_err(),
        fs::read_dir(&missing)
            .wait()
            .unwrap()
            .map(drop)
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("nope.txt"), "{err}");
        assert_eq!(original(&err).kind(), ErrorKind::NotFound);
        assert!(original(&err).raw_os_error().is_some());
    }
    let err = fs::copy(&missing, dir.join("to"))
        .wait()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("to `"), "both paths named: {err}");
}

#[test]
fn permission_denied_keeps_its_kind() {
    let dir = TempDir::new("fs-perm");
    let f = dir.join("secret");
    std::fs::write(&f, "x").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    // Root reads anything: then find a write the kernel refuses even to root.
    let target = if std::fs::read(&f).is_err() {
        f.clone()
    } else {
        std::path::PathBuf::from("/sys/kernel/notes")
    };
    let direct = std::fs::write(&target, "y").unwrap_err().kind();
    let ours = fs::write(&target, "y").wait().unwrap().unwrap_err();
    assert_eq!(ours.kind(), direct, "the same kind as std gives: {ours}");
    if target == f || direct == ErrorKind::PermissionDenied {
        assert_eq!(ours.kind(), ErrorKind::PermissionDenied, "{ours}");
    }
    assert!(
        ours.to_string().contains(&*target.to_string_lossy()),
        "{ours}"
    );
}

#[test]
fn a_directory_where_a_file_is_expected_is_an_error_not_a_panic() {
    let dir = TempDir::new("fs-isdir");
    let direct = std::fs::read(&dir.0).unwrap_err().kind();
    let err = fs::read(&dir.0).wait().unwrap().unwrap_err();
    assert_eq!(err.kind(), direct);
    let err = fs::remove_file(&dir.0).wait().unwrap().unwrap_err();
    assert_eq!(err.kind(), std::fs::remove_file(&dir.0).unwrap_err().kind());
    let chunks: Vec<_> = fs::read_chunks(&dir.0, 16).collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].as_ref().unwrap_err().kind(), direct);
}

#[test]
fn non_utf8_text_is_invalid_data() {
    let dir = TempDir::new("fs-utf8");
    let f = dir.join("latin1.txt");
    std::fs::write(&f, [b'c', b'a', b'f', 0xE9, b'\n']).unwrap();
    let err = fs::read_to_string(&f).wait().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    let lines: Vec<_> = fs::read_lines(&f).collect();
    assert_eq!(lines.len(), 1, "the bad line ends the stream");
    assert_eq!(
        lines[0].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidData
    );
}

#[test]
fn chunks_reassemble_the_file_and_lines_split_it() {
    let dir = TempDir::new("fs-chunks");
    let f = dir.join("data");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&f, &data).unwrap();
    for size in [1, 7, 4096, 10_000, 20_000] {
        let chunks: Vec<Vec<u8>> = fs::read_chunks(&f, size).map(Result::unwrap).collect();
        assert!(chunks.iter().all(|c| c.len() <= size && !c.is_empty()));
        assert_eq!(chunks.concat(), data, "chunk size {size}");
    }
    // As an async stream too.
    let chunks: Vec<Vec<u8>> = collect_stream(fs::read_chunks(&f, 999))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunks.concat(), data);
    let bad: Vec<_> = fs::read_chunks(&f, 0).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].as_ref().unwrap_err().kind(), ErrorKind::InvalidInput);

    let t = dir.join("text");
    std::fs::write(&t, "one\ntwo\r\n\nfour").unwrap();
    let lines: Vec<String> = fs::read_lines(&t).map(Result::unwrap).collect();
    assert_eq!(lines, ["one", "two", "", "four"]);
    let missing: Vec<_> = fs::read_lines(dir.join("none")).collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn a_chunk_stream_dropped_early_frees_its_worker() {
    let dir = TempDir::new("fs-early");
    let f = dir.join("big");
    std::fs::write(&f, vec![7u8; 1 << 20]).unwrap();
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let mut chunks = fs::on(&pool).read_chunks(&f, 1024, 2);
    assert_eq!(chunks.next().unwrap().unwrap().len(), 1024);
    drop(chunks);
    assert_eq!(
        pool.submit(|| 1).unwrap().wait_timeout(HUGE).ok(),
        Some(Ok(1))
    );
}

#[test]
fn a_shut_down_pool_hands_the_call_back_or_ends_the_stream() {
    let pool = Pool::new();
    pool.shutdown();
    let files = fs::on(&pool);
    assert!(
        files
            .read("Cargo.toml")
            .submit()
            .unwrap_err()
            .is_shut_down()
    );
    let chunks: Vec<_> = files.read_chunks("Cargo.toml", 64, 2).collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].as_ref().unwrap_err().kind(), ErrorKind::Other);
}
