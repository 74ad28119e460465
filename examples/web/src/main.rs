//! A key-value HTTP service on `offthread::sqlite::Db`, with axum: every handler awaits a
//! `Call`, so no database call ever blocks the runtime's threads.
//!
//! - `GET /kv/{key}`: the value, or 404;
//! - `PUT /kv/{key}` with the value as the body: stores it;
//! - `GET /count`: how many keys;
//! - `GET /stats`: the database's threads (`Db::stats`).
//!
//! Run: `cargo run --release -p offthread-web-example` (port 3000, or `PORT`), then
//! `curl -X PUT localhost:3000/kv/a -d 1; curl localhost:3000/kv/a`.
//! `-- --self-test` starts it on a free port, makes a few requests and exits (CI runs that).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use offthread::sqlite::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Reply = Result<String, (StatusCode, String)>;

/// A database error as a 500 with its message.
fn internal(e: offthread::sqlite::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn get_key(State(db): State<Db>, Path(key): Path<String>) -> Reply {
    let value: Option<String> = db
        .query_opt("SELECT v FROM kv WHERE k = ?1", (key,))
        .await
        .map_err(internal)?;
    value.ok_or((StatusCode::NOT_FOUND, "no such key\n".to_owned()))
}

async fn put_key(State(db): State<Db>, Path(key): Path<String>, body: String) -> Reply {
    db.execute(
        "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        (key, body),
    )
    .await
    .map_err(internal)?;
    Ok("stored\n".to_owned())
}

async fn count(State(db): State<Db>) -> Reply {
    let n: i64 = db
        .query_row("SELECT count(*) FROM kv", ())
        .await
        .map_err(internal)?;
    Ok(format!("{n}\n"))
}

async fn stats(State(db): State<Db>) -> String {
    let s = db.stats();
    let readers = s.readers.map_or(0, |r| r.workers);
    format!(
        "writer: {} calls done, {} queued; readers: {readers}, run time p99 {:?}\n",
        s.writer.completed, s.writer.queued, s.writer.run_time.p99
    )
}

fn app(db: Db) -> Router {
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key))
        .route("/count", get(count))
        .route("/stats", get(stats))
        .with_state(db)
}

/// One HTTP/1.1 request on a fresh connection; the response's status line and body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("receive");
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let dir = std::env::temp_dir().join(format!("offthread-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = Db::builder(dir.join("kv.db"))
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)"))
        .open()?;
    let port = if self_test {
        0
    } else {
        std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000)
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app(db.clone())).into_future());
    if !self_test {
        println!("listening on http://{addr}");
        server.await??;
        return Ok(());
    }
    let checks = [
        ("PUT", "/kv/a", "1", "200", "stored\n"),
        ("GET", "/kv/a", "", "200", "1"),
        ("GET", "/kv/missing", "", "404", "no such key\n"),
        ("GET", "/count", "", "200", "1\n"),
    ];
    for (method, path, body, status, want) in checks {
        let (line, got) = request(addr, method, path, body).await;
        assert!(line.contains(status), "{method} {path}: {line}");
        assert_eq!(got, want, "{method} {path}");
    }
    let (_, stats) = request(addr, "GET", "/stats", "").await;
    println!("self-test passed; {}", stats.trim());
    server.abort();
    db.close_async().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
