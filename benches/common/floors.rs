//! The floors the hook benchmarks compare against: programs that do the least a recording hook
//! could do. Each is the benchmark's own executable started with a flag, so that every target
//! pays the same process start.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs the floor named by `args[1]`, if any; returns false when the process is not a floor.
pub fn run_if_floor(args: &[String]) -> bool {
    match args.get(1).map(String::as_str) {
        Some("floor-parse") => floor_parse(),
        Some("floor-naive") => floor_naive(Path::new(&args[2]), Close::Checkpoint),
        Some("floor-bounded") => floor_naive(Path::new(&args[2]), Close::BoundedWal),
        Some("floor-held") => floor_held(Path::new(&args[2])),
        _ => return false,
    }
    true
}

/// The parse floor: read stdin, parse it, exit.
fn floor_parse() {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    std::hint::black_box(v);
}

/// How a naive floor keeps its WAL short.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Close {
    /// SQLite's default: the last connection to close checkpoints and removes the WAL.
    Checkpoint,
    /// No checkpoint on close; a TRUNCATE checkpoint when the WAL passes the store's bound for a
    /// process alone, whoever else has the store open (the fairer yardstick on a slow disk, where
    /// the close checkpoint's fsyncs dominate).
    BoundedWal,
}

/// Makes a floor's file (WAL, its one table) ahead of a load, so that the load measures writes.
#[allow(dead_code)]
pub fn prepare(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute(EVENTS_TABLE, []).unwrap();
}

const EVENTS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)";

/// What every naive floor does first: reads stdin and parses it, opens the store with SQLite's
/// busy handler (2 s), WAL and synchronous=NORMAL, with no close checkpoint for the bounded ones,
/// and makes its table; returns the connection and the payload to insert.
fn read_and_open(db: &Path, close: Close) -> (rusqlite::Connection, String) {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(2)).unwrap();
    if close == Close::BoundedWal {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    }
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute(EVENTS_TABLE, []).unwrap();
    (conn, v.to_string())
}

/// The naive floor: read, parse, insert one row with rusqlite (WAL, synchronous=NORMAL, SQLite's
/// own busy handler with a 2 s timeout), close.
fn floor_naive(db: &Path, close: Close) {
    let (conn, payload) = read_and_open(db, close);
    conn.execute("INSERT INTO events (payload) VALUES (?1)", [payload])
        .unwrap();
    if close == Close::BoundedWal {
        let _ = truncate_past_bound(&conn, db);
    }
}

/// The bounded floors' WAL bound: a TRUNCATE checkpoint when the WAL file is past the store's
/// bound for a process alone. How long the try took and whether it truncated; None when the WAL
/// was within the bound.
fn truncate_past_bound(conn: &rusqlite::Connection, db: &Path) -> Option<(Duration, bool)> {
    let wal = agent_harness::store::wal_path(db);
    if !std::fs::metadata(wal).is_ok_and(|m| m.len() > agent_harness::store::WAL_BOUND_BYTES) {
        return None;
    }
    let tried = Instant::now();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap_or(1);
    Some((tried.elapsed().max(Duration::from_micros(1)), busy == 0))
}

/// The bounded floor with its one INSERT in `BEGIN IMMEDIATE` ... `COMMIT` (the same locks as the
/// autocommit INSERT, which takes the write lock for its one statement) and the statement compiled
/// before, so that the write lock's hold can be timed as the hooks time theirs: it prints the
/// hooks' trace line (`hold_us=`, `work_hold_us=`, `reset_us=`, `preempted=`, `blocked=`)
/// on stderr. How long the least a recording hook could do holds the lock under the same load.
fn floor_held(db: &Path) {
    let (conn, payload) = read_and_open(db, Close::BoundedWal);
    let mut insert = conn
        .prepare("INSERT INTO events (payload) VALUES (?1)")
        .unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let began = Instant::now();
    let switches = agent_harness::store::context_switches();
    insert.execute([payload]).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    let held = began.elapsed();
    let (preempted, blocked) = agent_harness::store::switches_since(switches);
    let (truncation, truncated) = truncate_past_bound(&conn, db).unwrap_or_default();
    let work = if preempted || blocked {
        Duration::ZERO
    } else {
        held
    };
    eprintln!(
        "agent-harness-trace: hold_us={} work_hold_us={} reset_us={} resets={} \
         preempted={} blocked={}",
        held.as_micros(),
        work.as_micros(),
        truncation.as_micros(),
        u8::from(truncated),
        u8::from(preempted),
        u8::from(blocked)
    );
}
