//! `harness dashboard`: a local web page that shows what the store holds, live. The terminal stays
//! the control plane; the page is a second monitor, never needed to get work done.
//!
//! Owns the server: one listener on 127.0.0.1, a thread per connection up to [`MAX_CONNECTIONS`],
//! one request per connection, read-only SQLite connections for every read, and the two person
//! actions (waive a review, release a lock) through the store's one write path. The page, its
//! script and its style are compiled in (no build step, no CDN, works offline).
//!
//! Who may look: every request carries the random token printed in the URL (query or header),
//! compared in constant time; a POST must carry it in the `X-Harness-Token` header, come from this
//! origin (Origin, and Sec-Fetch-Site when the browser sends it) and be JSON; the Host header must
//! name this server (no DNS rebinding). Live updates are Server-Sent Events: each stream polls
//! `PRAGMA data_version` (nothing is read while nothing changed) and sends rows with an id above
//! the last one it sent, in batches, so a browser that reconnects with `Last-Event-ID` misses
//! nothing. Must not be on the hook path: the hooks know nothing of it.

mod api;
mod http;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_harness::config::Config;
use agent_harness::error::Error;
use agent_harness::store::{Store, claims, reviews, routes};
use agent_harness::time::now_ms;
use rusqlite::Connection;
use serde_json::json;

use crate::{CliResult, Exit};

pub use api::snapshot;

#[derive(clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1 to serve on; 0 picks a free one.
    #[arg(long, default_value_t = 7411)]
    port: u16,
    /// Open the page in the default browser (xdg-open) once it is served.
    #[arg(long)]
    open: bool,
}

/// Connections served at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 64;
/// How often a live stream looks for a change.
const POLL: Duration = Duration::from_millis(200);
/// A comment line on an idle stream this often, so a dead peer is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Who a release from the page is logged as in the lock history.
const ACTOR: &str = "harness dashboard";

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

struct Server {
    token: String,
    port: u16,
    db: PathBuf,
    config: Config,
    busy_timeout: Duration,
    /// The one writing connection, for the two actions.
    store: Mutex<Store>,
    connections: AtomicUsize,
}

pub fn run(args: Args) -> CliResult {
    let config = crate::config()?;
    // Opened (and brought up to date) once, before anything is served.
    let store = crate::open_store()?;
    let db = store.path().to_path_buf();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => format!(
            "port {} on 127.0.0.1 is in use (another `harness dashboard`?): pick another with \
             --port N, or --port 0 for any free one",
            args.port
        ),
        _ => format!("cannot listen on 127.0.0.1:{}: {e}", args.port),
    })?;
    let port = listener.local_addr()?.port();
    let server = Arc::new(Server {
        token: token()?,
        port,
        db,
        busy_timeout: Duration::from_millis(config.store.busy_timeout_ms),
        config,
        store: Mutex::new(store),
        connections: AtomicUsize::new(0),
    });
    let url = format!("http://127.0.0.1:{port}/?token={}", server.token);
    {
        // Printed once. A reader that goes away after the URL (a script that read one line) does
        // not stop the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "agent-harness dashboard: {url}\n(only this machine can reach it; Ctrl-C stops it)"
        )
        .and_then(|()| out.flush());
    }
    if args.open {
        open(&server.db, &url);
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if stream
            .peer_addr()
            .is_ok_and(|peer| other_user(peer.port(), port))
        {
            // Another account on this machine: it could not read anything without the token,
            // but its idle connections could fill every slot. Closed before it takes one.
            continue;
        }
        if server.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            server.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = http::error(&stream, 503, "too many connections");
            continue;
        }
        let shared = Arc::clone(&server);
        let spawned = std::thread::Builder::new()
            .name("dashboard-conn".into())
            .spawn(move || {
                serve(&shared, &stream);
                shared.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            server.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(Exit::Ok)
}

/// Opens the page in the default browser without putting the token on a command line (any user
/// can read another's with `ps`, and a browser started by xdg-open keeps its arguments for as long
/// as it runs): xdg-open gets an owner-only file that redirects to the URL, removed after a minute.
/// No shell: the path is one argument. A missing xdg-open is only a note.
fn open(db: &std::path::Path, url: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let file = dir.join(format!(".dashboard-open-{}.html", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\"><a href=\"{url}\">agent-harness \
         dashboard</a>\n"
    );
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .and_then(|mut f| f.write_all(page.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "harness: could not write {} ({e}); open the URL above by hand",
            file.display()
        );
        return;
    }
    match std::process::Command::new("xdg-open")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("dashboard-open".into())
                .spawn(move || {
                    // xdg-open that finds no browser (no desktop session, nothing configured)
                    // starts and then fails.
                    match child.wait() {
                        Ok(status) if !status.success() => eprintln!(
                            "harness: xdg-open could not open the page ({status}); open the URL \
                             above by hand"
                        ),
                        _ => {}
                    }
                    std::thread::sleep(Duration::from_secs(60));
                    let _ = std::fs::remove_file(&file);
                });
        }
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            eprintln!("harness: could not run xdg-open ({e}); open the URL above by hand");
        }
    }
}

/// Whether the local socket connected from `peer_port` to our `port` belongs to another user, as
/// the kernel's socket tables say (Linux). Anything unknown (no /proc, the peer already gone)
/// answers no: the token still guards every request.
fn other_user(peer_port: u16, port: u16) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return false;
    };
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .ok()
            .and_then(|t| socket_owner(&t, peer_port, port))
            .is_some_and(|uid| uid != me)
    })
}

/// The uid owning the socket from local port `from` to remote port `to` in a /proc/net/tcp table.
fn socket_owner(table: &str, from: u16, to: u16) -> Option<u32> {
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 7 && port(f[1]) == Some(from) && port(f[2]) == Some(to))
            .then(|| f[7].parse().ok())
            .flatten()
    })
}

/// 32 random hex digits (128 bits) from the kernel.
fn token() -> CliResult<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom for the dashboard's token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Server {
    fn reader(&self) -> Result<Connection, String> {
        Store::open_read_only(&self.db, self.busy_timeout).map_err(|e| e.to_string())
    }

    fn host_ok(&self, req: &http::Request) -> bool {
        req.header("host").is_some_and(|h| {
            h == format!("127.0.0.1:{}", self.port) || h == format!("localhost:{}", self.port)
        })
    }

    fn origin_ok(&self, req: &http::Request) -> bool {
        let origin = req.header("origin").is_none_or(|o| {
            o == format!("http://127.0.0.1:{}", self.port)
                || o == format!("http://localhost:{}", self.port)
        });
        let site = req
            .header("sec-fetch-site")
            .is_none_or(|s| s == "same-origin" || s == "none");
        origin && site
    }
}

fn serve(server: &Server, stream: &TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let req = match http::read(stream) {
        Ok(r) => r,
        Err(http::ReadError::Gone) => return,
        Err(http::ReadError::Bad(status, why)) => {
            let _ = http::error(stream, status, why);
            return;
        }
    };
    let _ = route(server, stream, &req);
}

fn route(server: &Server, stream: &TcpStream, req: &http::Request) -> std::io::Result<()> {
    if !server.host_ok(req) {
        return http::error(stream, 403, "unknown Host");
    }
    if req.path == "/favicon.ico" {
        return http::respond(stream, 404, "text/plain", b"");
    }
    let header_token = req.header("x-harness-token");
    let token = header_token.or_else(|| req.param("token"));
    if !token.is_some_and(|t| same(t, &server.token)) {
        return http::error(
            stream,
            401,
            "missing or wrong token: open the URL `harness dashboard` printed",
        );
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => {
            let page = INDEX_HTML.replace("{{TOKEN}}", &server.token);
            http::respond(stream, 200, "text/html; charset=utf-8", page.as_bytes())
        }
        ("GET", "/app.js") => http::respond(
            stream,
            200,
            "text/javascript; charset=utf-8",
            APP_JS.as_bytes(),
        ),
        ("GET", "/style.css") => {
            http::respond(stream, 200, "text/css; charset=utf-8", STYLE_CSS.as_bytes())
        }
        ("GET", "/api/snapshot") => match read_snapshot(server) {
            Ok(v) => http::json(stream, 200, &v),
            Err(e) => http::error(stream, 500, &e),
        },
        ("GET", "/api/events") => {
            let after = req.param("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            match server
                .reader()
                .and_then(|c| api::feed_after(&c, after, api::BATCH).map_err(|e| e.to_string()))
            {
                Ok(rows) => http::json(stream, 200, &json!({ "events": rows })),
                Err(e) => http::error(stream, 500, &e),
            }
        }
        ("GET", "/api/stream") => events(server, stream, req),
        ("POST", path @ ("/api/reviews/waive" | "/api/locks/release")) => {
            if header_token.is_none() {
                return http::error(stream, 403, "send the token in the X-Harness-Token header");
            }
            if !server.origin_ok(req) {
                return http::error(stream, 403, "cross-site request refused");
            }
            if !req
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
            {
                return http::error(stream, 415, "send JSON");
            }
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
                return http::error(stream, 400, "the body is not JSON");
            };
            let (status, v) = if path == "/api/reviews/waive" {
                waive(server, &body)
            } else {
                release(server, &body)
            };
            http::json(stream, status, &v)
        }
        (_, "/" | "/app.js" | "/style.css" | "/api/snapshot" | "/api/events" | "/api/stream") => {
            http::error(stream, 405, "method not allowed")
        }
        _ => http::error(stream, 404, "no such page"),
    }
}

/// When the routing decisions were last settled (the hooks leave that to readers).
static SETTLED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
/// How often the page settles routing decisions, and how many at most each time (a short write
/// transaction beside busy hooks).
const SETTLE_EVERY_MS: i64 = 30_000;
const SETTLE_ROWS: usize = 20;

fn read_snapshot(server: &Server) -> Result<serde_json::Value, String> {
    let now = now_ms();
    let last = SETTLED_MS.load(Ordering::Relaxed);
    if now - last >= SETTLE_EVERY_MS
        && SETTLED_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        // The outcomes the Routing panel shows. A failure only leaves them pending.
        let _ = write(server, |tx| routes::settle_all(tx, now, SETTLE_ROWS));
    }
    let conn = server.reader()?;
    api::snapshot(&conn, &server.config, &server.db, now_ms(), 10).map_err(|e| e.to_string())
}

fn write<T>(
    server: &Server,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> Result<T, String> {
    let mut store = server
        .store
        .lock()
        .map_err(|_| "the store is unavailable")?;
    let db = server.db.clone();
    store
        .write(|tx| f(tx).map_err(|e| Error::db("write to", &db, e)))
        .map_err(|e| e.to_string())
}

fn waive(server: &Server, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let Some(session) = body["session_id"].as_str() else {
        return (
            400,
            json!({"error": "name the session: {\"session_id\": ...}"}),
        );
    };
    let reason = body["reason"]
        .as_str()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("waived from the dashboard");
    let reason = agent_harness::redact::redact_str(reason).into_owned();
    match write(server, |tx| {
        reviews::waive(tx, session, Some(&reason), now_ms())
    }) {
        Ok(Some(id)) => (200, json!({"waived": id})),
        Ok(None) => (409, json!({"error": "that session has no open review"})),
        Err(e) => (500, json!({"error": e})),
    }
}

fn release(server: &Server, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let Some(path) = body["path"].as_str() else {
        return (400, json!({"error": "name the file: {\"path\": ...}"}));
    };
    // The holder the page showed: a page that is a few seconds old must not release a claim
    // another agent has taken since (two agents would then edit the file at once).
    let seen = body["session_id"].as_str();
    let released = write(server, |tx| match claims::get(tx, path)? {
        Some(c) if seen.is_some_and(|s| s != c.session_id) => Ok(Err(c.session_id)),
        Some(_) => claims::release_path(tx, path, ACTOR, now_ms()).map(Ok),
        None => Ok(Ok(None)),
    });
    match released {
        Ok(Ok(Some(c))) => (200, json!({"released": c.path, "holder": c.session_id})),
        Ok(Ok(None)) => (409, json!({"error": "no agent holds that file"})),
        Ok(Err(holder)) => (
            409,
            json!({"error": format!("another session ({}) holds that file now: reload", short(&holder))}),
        ),
        Err(e) => (500, json!({"error": e})),
    }
}

/// A session id's first 8 characters, as the page shows it.
fn short(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}

/// The live stream: `events` batches (id = the batch's last event id) and a `changed` note after
/// every change, for the page to refresh its other panels.
fn events(server: &Server, stream: &TcpStream, req: &http::Request) -> std::io::Result<()> {
    let conn = match server.reader() {
        Ok(c) => c,
        Err(e) => return http::error(stream, 500, &e),
    };
    let start = req
        .header("last-event-id")
        .or_else(|| req.param("after"))
        .and_then(|v| v.parse::<i64>().ok());
    let mut last = match start {
        Some(id) => id,
        None => agent_harness::store::query::last_event_id(&conn).unwrap_or(0),
    };
    http::start_events(stream)?;
    let mut out = std::io::BufWriter::new(stream);
    // Reconnect after 1 s if the server goes away and comes back.
    write!(out, "retry: 1000\n\n")?;
    out.flush()?;
    let mut version: Option<i64> = None;
    let mut quiet_since = Instant::now();
    loop {
        let now_version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap_or(-1);
        if version != Some(now_version) {
            version = Some(now_version);
            loop {
                let rows = api::feed_after(&conn, last, api::BATCH).unwrap_or_default();
                let Some(max) = rows.last().and_then(|r| r["id"].as_i64()) else {
                    break;
                };
                last = max;
                let full = rows.len() == api::BATCH;
                let data = serde_json::Value::from(rows);
                write!(out, "id: {last}\nevent: events\ndata: {data}\n\n")?;
                if !full {
                    break;
                }
            }
            write!(out, "event: changed\ndata: {{}}\n\n")?;
            out.flush()?;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= KEEPALIVE {
            write!(out, ": keepalive\n\n")?;
            out.flush()?;
            quiet_since = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::{same, socket_owner};

    #[test]
    fn a_socket_owner_is_read_from_the_kernel_table() {
        // Real /proc/net/tcp lines: the listener on 0x894B (35147), its accepted end, and the
        // client's end (local port 0xE0A2 = 57506) owned by uid 1001.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:894B 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 493656 1
   1: 0100007F:894B 0100007F:E0A2 01 00000000:00000000 00:00000000 00000000  1000        0 639 1
   2: 0100007F:E0A2 0100007F:894B 01 00000000:00000000 00:00000000 00000000  1001        0 640 1
";
        assert_eq!(socket_owner(table, 57506, 35147), Some(1001));
        assert_eq!(socket_owner(table, 35147, 57506), Some(1000));
        assert_eq!(socket_owner(table, 57507, 35147), None);
        assert_eq!(socket_owner("", 1, 2), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
