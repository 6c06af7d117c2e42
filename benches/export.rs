//! OTLP export benchmark: `cargo bench --bench export`.
//!
//! Exports a store of 1,000,000 recorded events (2,000 sessions of 50 turns; each turn a prompt,
//! four tool calls with Claude-shaped payloads, one of them failing, and a Stop: 10 events, 5
//! spans) with the release `harness export otlp --signal traces --reset`, to a minimal HTTP sink
//! on 127.0.0.1 that reads each request and answers `200 {}` (so the figure is the exporter's,
//! not a collector's). Reports wall time, events and spans per second, requests, bytes sent,
//! and the exporter's peak resident memory (VmHWM, sampled every 10 ms).
//!
//! The store is generated once into `target/bench-export/` (kept; regenerated when its event
//! count differs). `BENCH_RUNS` (default 1) timed runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_harness::store::Store;

const SESSIONS: usize = 2000;
const TURNS: usize = 50;
const EVENTS: i64 = (SESSIONS * TURNS * 10) as i64;

fn ensure_store(db: &Path) {
    if db.exists() {
        let conn = rusqlite::Connection::open(db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap_or(0);
        if n == EVENTS {
            return;
        }
        drop(conn);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    eprintln!("generating {EVENTS} events into {} ...", db.display());
    let began = Instant::now();
    let mut store = Store::open(db, Duration::from_secs(5)).unwrap();
    store.write(|_| Ok(())).unwrap();
    drop(store);
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO events (ts_ms, session_id, agent, event, tool_name, tool_use_id, \
                 file_path, payload) VALUES (?1, ?2, 'claude', ?3, ?4, ?5, ?6, ?7)",
            )
            .unwrap();
        let mut ses = tx
            .prepare(
                "INSERT INTO sessions (session_id, agent, first_seen_ms, cwd, project_root, model) \
                 VALUES (?1, 'claude', ?2, '/home/dev/project', '/home/dev/project', 'claude-sonnet-4-5')",
            )
            .unwrap();
        let mut ts = 1_760_000_000_000i64;
        for s in 0..SESSIONS {
            let sid = format!("{s:08x}-2b7f-4230-a9af-5d276922e5ae");
            ses.execute(rusqlite::params![sid, ts]).unwrap();
            let base = format!(
                r#""session_id":"{sid}","transcript_path":"/home/dev/.claude/projects/-home-dev-project/{sid}.jsonl","cwd":"/home/dev/project","permission_mode":"default""#
            );
            for t in 0..TURNS {
                ts += 1000;
                let prompt = format!(
                    r#"{{{base},"hook_event_name":"UserPromptSubmit","prompt":"refactor the parser in src/module_{t}.rs and run the tests"}}"#
                );
                ins.execute(rusqlite::params![
                    ts,
                    sid,
                    "UserPromptSubmit",
                    None::<&str>,
                    None::<&str>,
                    None::<&str>,
                    prompt
                ])
                .unwrap();
                for k in 0..4 {
                    let id = format!("toolu_{s:06}_{t:03}_{k}");
                    let (tool, input, file) = match k {
                        0 => ("Read", format!(r#"{{"file_path":"/home/dev/project/src/module_{t}.rs"}}"#), Some(format!("/home/dev/project/src/module_{t}.rs"))),
                        1 => ("Edit", format!(r#"{{"file_path":"/home/dev/project/src/module_{t}.rs","old_string":"fn parse(","new_string":"fn parse_all("}}"#), Some(format!("/home/dev/project/src/module_{t}.rs"))),
                        _ => ("Bash", r#"{"command":"cargo test --lib parser","description":"run the parser tests"}"#.to_owned(), None),
                    };
                    ts += 50;
                    let pre = format!(
                        r#"{{{base},"hook_event_name":"PreToolUse","tool_name":"{tool}","tool_input":{input},"tool_use_id":"{id}"}}"#
                    );
                    ins.execute(rusqlite::params![
                        ts,
                        sid,
                        "PreToolUse",
                        tool,
                        id,
                        file,
                        pre
                    ])
                    .unwrap();
                    ts += 400;
                    let (event, post) = if k == 3 {
                        (
                            "PostToolUseFailure",
                            format!(
                                r#"{{{base},"hook_event_name":"PostToolUseFailure","tool_name":"{tool}","tool_input":{input},"tool_use_id":"{id}","error":"Exit code 101","duration_ms":400}}"#
                            ),
                        )
                    } else {
                        (
                            "PostToolUse",
                            format!(
                                r#"{{{base},"hook_event_name":"PostToolUse","tool_name":"{tool}","tool_input":{input},"tool_use_id":"{id}","tool_response":{{"ok":true}},"duration_ms":400}}"#
                            ),
                        )
                    };
                    ins.execute(rusqlite::params![ts, sid, event, tool, id, file, post])
                        .unwrap();
                }
                ts += 200;
                let stop =
                    format!(r#"{{{base},"hook_event_name":"Stop","stop_hook_active":false}}"#);
                ins.execute(rusqlite::params![
                    ts,
                    sid,
                    "Stop",
                    None::<&str>,
                    None::<&str>,
                    None::<&str>,
                    stop
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    eprintln!("generated in {:.1} s", began.elapsed().as_secs_f64());
}

/// A minimal OTLP sink: reads each request (keep-alive), answers 200 `{}`.
fn sink(requests: Arc<AtomicU64>, bytes: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (requests, bytes) = (requests.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(len as u64, Ordering::Relaxed);
                    let _ = w.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                    );
                }
            });
        }
    });
    port
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench-export");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.db");
    ensure_store(&db);
    let config = dir.join("config.json");
    std::fs::write(&config, "").unwrap();
    let (requests, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let port = sink(requests.clone(), bytes.clone());
    for run in 1..=runs {
        requests.store(0, Ordering::Relaxed);
        bytes.store(0, Ordering::Relaxed);
        let began = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args([
                "export",
                "otlp",
                "--signal",
                "traces",
                "--reset",
                "--endpoint",
            ])
            .arg(format!("http://127.0.0.1:{port}"))
            .env("HARNESS_DB", &db)
            .env("HARNESS_CONFIG", &config)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut peak = 0;
        loop {
            if let Some(kib) = vm_hwm_kib(child.id()) {
                peak = peak.max(kib);
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = began.elapsed().as_secs_f64();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let spans: u64 = text
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert_eq!(spans, (SESSIONS * TURNS * 5) as u64, "{text}");
        println!(
            "run {run}: {EVENTS} events, {spans} spans in {elapsed:.2} s: {:.0} events/s, {:.0} \
             spans/s; {} requests, {:.1} MiB sent; peak RSS {:.1} MiB",
            EVENTS as f64 / elapsed,
            spans as f64 / elapsed,
            requests.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
            peak as f64 / 1024.0,
        );
    }
}
