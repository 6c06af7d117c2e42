//! Many agents at once: `cargo bench --bench concurrency`.
//!
//! N parallel clients, each a session that runs M PreToolUse hook calls one after another on a
//! file of its own (no lock conflicts), all on one store, as several Claude Code sessions and
//! their subagents do. Beside it, in the same run, the floors of `benches/common/floors.rs` under
//! the same load: `floor-naive` (one autocommit INSERT, WAL, synchronous=NORMAL, SQLite's busy
//! handler, checkpoint on close), `floor-bounded` (the same without the close checkpoint, the WAL
//! bounded at the store's bound for a process alone) and `floor-held` (the bounded floor's INSERT
//! in `BEGIN IMMEDIATE` ... `COMMIT`, so that its hold of the write lock is timed as the hook's
//! is). Each target's calls run in `BENCH_ROUNDS` parts (default 4), the targets taking turns.
//!
//! Reported per target and N: events/s (all calls / wall time), p50, p99 and max latency of one
//! call (spawn to exit), calls whose event was spooled (the store was busy past the timeout),
//! the CPU time one call cost (user and system, of the process the bench started), and for the
//! hooks how long one call held the store's write lock for its transaction, p99 and max, and how
//! many calls reset the WAL (a TRUNCATE alone, a RESTART while others have the store open) of how
//! many that tried, with the longest try (at most that long it held the lock for it; each call
//! prints these with `AGENT_HARNESS_TRACE_HOLD`), and the
//! share of transactions during which the scheduler switched the holder out ("preempted": it
//! waited for a CPU) and during which it waited for I/O or a page of memory ("blocked"; both
//! from `getrusage`), with the longest hold that was neither ("work max": what the work inside
//! the lock costs). Every event is checked to be stored exactly once.
//!
//! `BENCH_CLIENTS` (default `1,4,16,64`) and `BENCH_CALLS` (calls per client, default 200; 64
//! clients run a quarter of that each) set the load.

#[path = "common/floors.rs"]
mod floors;

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if floors::run_if_floor(&args) {
        return;
    }
    let clients: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
        .max(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = root
        .join("target")
        .join(format!("bench-concurrency-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let me = std::env::current_exe().unwrap();
    let hook = PathBuf::from(env!("CARGO_BIN_EXE_harness-pre-tool-use"));

    println!(
        "{:<22} {:>4} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>20}",
        "target",
        "N",
        "calls",
        "events/s",
        "cpu ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "spooled",
        "hold p99",
        "hold max",
        "work max",
        "preempted",
        "blocked",
        "waits",
        "WAL resets, longest"
    );
    for &n in &clients {
        let m = if n >= 64 { (calls / 4).max(1) } else { calls };
        let kinds = [Kind::Naive, Kind::Bounded, Kind::Held, Kind::Hook];
        let dbs: Vec<PathBuf> = kinds
            .iter()
            .map(|kind| {
                let dir = scratch.join(format!("{}-{n}", kind.name()));
                std::fs::create_dir_all(&dir).unwrap();
                let db = dir.join("harness.db");
                if *kind != Kind::Hook {
                    // The floor's file made beforehand: 16 naive processes switching a new file to
                    // WAL at once sometimes get SQLITE_BUSY from SQLite without its busy handler,
                    // and a floor that fails is no floor. (The hook's store is made by its first
                    // calls.)
                    floors::prepare(&db);
                }
                db
            })
            .collect();
        // The calls of each target in `rounds` parts, the targets taking turns (each round
        // starting one target later), so that this machine's drift (the CPU time of one call
        // moves by a quarter between runs minutes apart) falls on every target alike.
        let mut parts: Vec<Vec<Part>> = kinds.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let (first, last) = (m * round / rounds, m * (round + 1) / rounds);
            for turn in 0..kinds.len() {
                let k = (round + turn) % kinds.len();
                let program = if kinds[k] == Kind::Hook { &hook } else { &me };
                parts[k].push(run_load(kinds[k], program, &dbs[k], n, first..last));
            }
        }
        let mut results = Vec::new();
        for (k, kind) in kinds.iter().enumerate() {
            check_stored(*kind, &dbs[k], n * m, &hook);
            results.push((*kind, summarize(*kind, std::mem::take(&mut parts[k]))));
        }
        let naive_rate = results[0].1.rate;
        let bounded_p50 = results[1].1.p50;
        for (kind, r) in &results {
            println!(
                "{:<22} {:>4} {:>6} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>20}",
                kind.name(),
                n,
                n * m,
                r.rate,
                r.cpu_ms,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                r.spooled,
                r.hold_p99
                    .map_or("-".into(), |h| format!("{:.2} ms", ms(h))),
                r.hold_max
                    .map_or("-".into(), |h| format!("{:.2} ms", ms(h))),
                r.work_hold_max
                    .map_or("-".into(), |h| format!("{:.2} ms", ms(h))),
                r.preempted
                    .map_or("-".into(), |p| format!("{:.1}%", p * 100.0)),
                r.blocked
                    .map_or("-".into(), |p| format!("{:.1}%", p * 100.0)),
                r.waits.map_or("-".into(), |w| format!("{w:.1}")),
                r.resets.map_or("-".into(), |(done, tried, max)| format!(
                    "{done}/{tried} {:.2} ms",
                    ms(max)
                ))
            );
        }
        let hook = &results[3].1;
        println!(
            "  N={n}: hook events/s / naive floor's: {:.2}x (aim >= 1.00x); p50 / bounded floor's: \
             {:.2}x (aim <= 1.20x at N=1)",
            hook.rate / naive_rate,
            hook.p50.as_secs_f64() / bounded_p50.as_secs_f64()
        );
    }
    holds_by_input(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// How long a call holds the write lock for bulky input, one client: a Read whose response is a
/// whole file, a Write whose content is, and a Bash command of that size, 1 MB and 3.9 MB, 20
/// calls each (all are stored bounded: the first two to 4 KiB a string, the command to 64 KiB).
/// `BENCH_HOLDS=0` skips it.
fn holds_by_input(scratch: &Path) {
    if std::env::var("BENCH_HOLDS").as_deref() == Ok("0") {
        return;
    }
    let post = PathBuf::from(env!("CARGO_BIN_EXE_harness-post-tool-use"));
    let pre = PathBuf::from(env!("CARGO_BIN_EXE_harness-pre-tool-use"));
    println!();
    println!(
        "{:<40} {:>9} {:>9} {:>12}",
        "bulky input, 1 client", "hold p50", "hold max", "stored bytes"
    );
    for mb in [1.0, 3.9] {
        let body = "0123456789abcdef\n".repeat((mb * 1_000_000.0 / 17.0) as usize);
        for (label, program, event, tool) in [
            ("PostToolUse Read, response", &post, "PostToolUse", "Read"),
            ("PostToolUse Write, content", &post, "PostToolUse", "Write"),
            ("PreToolUse Bash, command", &pre, "PreToolUse", "Bash"),
        ] {
            let dir = scratch.join(format!("holds-{tool}-{mb}"));
            std::fs::create_dir_all(&dir).unwrap();
            let db = dir.join("harness.db");
            let mut holds = Vec::new();
            for i in 0..20 {
                let file = format!("/tmp/bulky-{i}");
                let (input, response) = match tool {
                    "Read" => (
                        serde_json::json!({"file_path": file}),
                        serde_json::json!({"type": "text",
                            "file": {"filePath": file, "content": body}}),
                    ),
                    "Write" => (
                        serde_json::json!({"file_path": file, "content": body}),
                        serde_json::json!({"type": "create", "filePath": file}),
                    ),
                    _ => (
                        serde_json::json!({"command": format!("printf '{body}'")}),
                        serde_json::Value::Null,
                    ),
                };
                let p = serde_json::json!({"session_id": "bench-bulky", "cwd": "/tmp",
                    "hook_event_name": event, "tool_name": tool,
                    "tool_use_id": format!("toolu_bulky_{i}"), "tool_input": input,
                    "tool_response": response});
                let (_, stderr) = call(Kind::Hook, program, &db, p.to_string().as_bytes());
                if let Some(us) = trace_field(&stderr, "hold_us=") {
                    holds.push(Duration::from_micros(us));
                }
            }
            holds.sort();
            let conn = rusqlite::Connection::open(&db).unwrap();
            let stored: i64 = conn
                .query_row("SELECT max(length(payload)) FROM events", [], |r| r.get(0))
                .unwrap();
            println!(
                "{:<40} {:>6.2} ms {:>6.2} ms {:>12}",
                format!("{label}, {mb} MB"),
                ms(holds[holds.len() / 2]),
                ms(*holds.last().unwrap()),
                stored
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Naive,
    Bounded,
    Held,
    Hook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Naive => "floor-naive",
            Kind::Bounded => "floor-bounded",
            Kind::Held => "floor-held",
            Kind::Hook => "harness-pre-tool-use",
        }
    }

    /// Whether its calls print the hooks' trace line (holds, WAL resets, switches).
    fn traced(self) -> bool {
        matches!(self, Kind::Held | Kind::Hook)
    }
}

struct Load {
    rate: f64,
    /// CPU time of one call, user and system.
    cpu_ms: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    spooled: usize,
    hold_p99: Option<Duration>,
    hold_max: Option<Duration>,
    /// The longest hold neither preempted nor blocked: the work inside the lock.
    work_hold_max: Option<Duration>,
    /// The share of transactions during which the holder was switched out involuntarily.
    preempted: Option<f64>,
    /// The share of transactions during which the holder waited for I/O or a page of memory.
    blocked: Option<f64>,
    /// How many calls reset the WAL (truncated it, or restarted it while others had the store
    /// open), how many tried to, and the longest attempt (at most that long it held the write
    /// lock).
    resets: Option<(u64, usize, Duration)>,
    /// Busy-handler sleeps per call.
    waits: Option<f64>,
}

/// The PreToolUse payload of client `c`'s call `i`: its own session and file.
fn payload(c: usize, i: usize) -> Vec<u8> {
    serde_json::json!({
        "session_id": format!("bench-{c:04}-0000-4000-8000-000000000000"),
        "transcript_path": format!("/tmp/bench-{c}.jsonl"),
        "cwd": "/tmp",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_use_id": format!("toolu_bench_{c}_{i}"),
        "tool_input": {"file_path": format!("/tmp/agent-harness-bench/client-{c}.rs"),
                       "old_string": "a", "new_string": "b"}
    })
    .to_string()
    .into_bytes()
}

/// A field of the `agent-harness-trace:` line a hook prints with `AGENT_HARNESS_TRACE_HOLD`.
fn trace_field(stderr: &str, name: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("agent-harness-trace: "))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name))
        .and_then(|v| v.parse().ok())
}

/// The CPU time, user and system, of this process's children that have been waited for, in
/// milliseconds (`cutime` and `cstime` of `/proc/self/stat`, in clock ticks: 10 ms where there
/// are 100 a second, and a load of 200 calls or more spends seconds).
fn children_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // cutime and cstime are fields 16 and 17 of the whole line, 14 and 15 after the name.
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks * 1000.0 / per_second
}

/// What one client's calls measured.
#[derive(Default)]
struct PerClient {
    samples: Vec<Duration>,
    spooled: usize,
    holds: Vec<Duration>,
    work_hold_max: Duration,
    waits: u64,
    attempts: Vec<Duration>,
    resets: u64,
    preempted: u64,
    blocked: u64,
}

/// One part of a target's load: the clients' measures, its wall time and its calls' CPU time.
struct Part {
    per_client: Vec<PerClient>,
    wall: Duration,
    cpu_ms: f64,
}

/// `n` clients, each making the calls numbered `calls` one after another.
fn run_load(kind: Kind, program: &Path, db: &Path, n: usize, calls: Range<usize>) -> Part {
    let cpu_before = children_cpu_ms();
    let started = Instant::now();
    let per_client: Vec<PerClient> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|c| {
                let calls = calls.clone();
                s.spawn(move || {
                    let mut p = PerClient::default();
                    for i in calls {
                        let (took, stderr) = call(kind, program, db, &payload(c, i));
                        p.samples.push(took);
                        if stderr.contains("waits in") {
                            p.spooled += 1;
                        }
                        if let Some(us) = trace_field(&stderr, "hold_us=") {
                            p.holds.push(Duration::from_micros(us));
                        }
                        let work = trace_field(&stderr, "work_hold_us=").unwrap_or(0);
                        p.work_hold_max = p.work_hold_max.max(Duration::from_micros(work));
                        p.waits += trace_field(&stderr, "waits=").unwrap_or(0);
                        match trace_field(&stderr, "reset_us=") {
                            Some(0) | None => {}
                            Some(us) => p.attempts.push(Duration::from_micros(us)),
                        }
                        p.resets += trace_field(&stderr, "resets=").unwrap_or(0);
                        p.preempted += trace_field(&stderr, "preempted=").unwrap_or(0);
                        p.blocked += trace_field(&stderr, "blocked=").unwrap_or(0);
                    }
                    p
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Part {
        per_client,
        wall: started.elapsed(),
        cpu_ms: children_cpu_ms() - cpu_before,
    }
}

/// A target's parts, taken together: events/s over their wall time, percentiles over all calls.
fn summarize(kind: Kind, parts: Vec<Part>) -> Load {
    let wall: Duration = parts.iter().map(|p| p.wall).sum();
    let cpu_ms: f64 = parts.iter().map(|p| p.cpu_ms).sum();
    let per_client: Vec<PerClient> = parts.into_iter().flat_map(|p| p.per_client).collect();
    let mut all: Vec<Duration> = per_client.iter().flat_map(|p| p.samples.clone()).collect();
    all.sort();
    let at = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    let mut holds: Vec<Duration> = per_client.iter().flat_map(|p| p.holds.clone()).collect();
    holds.sort();
    let hold_at = |p: f64| {
        (kind.traced() && !holds.is_empty())
            .then(|| holds[((holds.len() as f64 - 1.0) * p).round() as usize])
    };
    Load {
        rate: all.len() as f64 / wall.as_secs_f64(),
        cpu_ms: cpu_ms / all.len() as f64,
        p50: at(0.5),
        p99: at(0.99),
        max: *all.last().unwrap(),
        spooled: per_client.iter().map(|p| p.spooled).sum(),
        hold_p99: hold_at(0.99),
        hold_max: hold_at(1.0),
        work_hold_max: (kind.traced() && !holds.is_empty()).then(|| {
            per_client
                .iter()
                .map(|p| p.work_hold_max)
                .max()
                .unwrap_or_default()
        }),
        preempted: (kind.traced() && !holds.is_empty()).then(|| {
            per_client.iter().map(|p| p.preempted).sum::<u64>() as f64 / holds.len() as f64
        }),
        blocked: (kind.traced() && !holds.is_empty())
            .then(|| per_client.iter().map(|p| p.blocked).sum::<u64>() as f64 / holds.len() as f64),
        resets: kind.traced().then(|| {
            let t: Vec<Duration> = per_client.iter().flat_map(|p| p.attempts.clone()).collect();
            let done = per_client.iter().map(|p| p.resets).sum();
            (done, t.len(), t.iter().max().copied().unwrap_or_default())
        }),
        waits: (kind == Kind::Hook)
            .then(|| per_client.iter().map(|p| p.waits).sum::<u64>() as f64 / all.len() as f64),
    }
}

fn call(kind: Kind, program: &Path, db: &Path, stdin: &[u8]) -> (Duration, String) {
    let mut cmd = Command::new(program);
    match kind {
        Kind::Hook => {
            cmd.env("HARNESS_DB", db)
                .env("AGENT_HARNESS_TRACE_HOLD", "1")
                .env("HARNESS_CONFIG", "/dev/null");
        }
        Kind::Naive => {
            cmd.arg("floor-naive").arg(db);
        }
        Kind::Bounded => {
            cmd.arg("floor-bounded").arg(db);
        }
        Kind::Held => {
            cmd.arg("floor-held").arg(db);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{} failed", kind.name());
    (took, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every event stored exactly once (after one more hook call stores whatever was spooled).
fn check_stored(kind: Kind, db: &Path, expected: usize, hook: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |conn: &rusqlite::Connection| -> usize {
        let sql = match kind {
            Kind::Hook => {
                "SELECT count(DISTINCT tool_use_id) || ',' || count(*) FROM events \
                 WHERE tool_use_id LIKE 'toolu_bench_%'"
            }
            _ => "SELECT count(*) || ',' || count(*) FROM events",
        };
        let s: String = conn.query_row(sql, [], |r| r.get(0)).unwrap();
        let (distinct, all) = s.split_once(',').unwrap();
        assert_eq!(distinct, all, "{}: an event stored twice", kind.name());
        all.parse().unwrap()
    };
    if kind == Kind::Hook && count(&conn) < expected {
        let flush = serde_json::json!({"session_id": "bench-flush", "cwd": "/tmp",
            "hook_event_name": "PreToolUse", "tool_name": "Read", "tool_use_id": "flush",
            "tool_input": {"file_path": "/tmp/x"}});
        let _ = call(kind, hook, db, flush.to_string().as_bytes());
    }
    let stored = count(&conn);
    assert_eq!(stored, expected, "{}: events lost", kind.name());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
