//! Hook latency benchmark: `cargo bench --bench hooks`.
//!
//! Times every hook binary on its recorded fixture (wall time from spawn to exit, many runs, p50
//! and p99) on an empty store and on one holding 1,000,000 events, beside two floors measured in
//! the same run, in interleaved rounds so that machine noise falls on all of them alike:
//!
//! - `floor-parse`: a program that only reads stdin and parses it as JSON;
//! - `floor-naive`: one that also inserts the payload as one row with rusqlite (WAL,
//!   synchronous=NORMAL, default close, i.e. SQLite checkpoints when the connection closes);
//! - `floor-bounded`: the same without the close checkpoint, its WAL bounded as the store bounds
//!   it (the fairer yardstick where fsyncs are slow).
//!
//! p50, p99, mean and max are reported for every target. A mean well above the median comes from
//! the one call in about twelve that checkpoints the WAL (two fsyncs); the max column shows it.
//!
//! The floors are this same executable started with a flag, so they pay the same process start.
//! `BENCH_RUNS` sets the rounds (default 300). The 1M-event store is built once and kept in
//! `target/bench-store-1m.db`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_harness::event::Event;
use agent_harness::payload::HookPayload;
use agent_harness::store::Store;
use agent_harness::store::record::Recording;

const FIXTURES: &[(&str, &str)] = &[
    (
        "harness-session-start",
        "claude-code-2.1.197/SessionStart-startup.json",
    ),
    (
        "harness-user-prompt-submit",
        "claude-code-2.1.197/UserPromptSubmit.json",
    ),
    (
        "harness-user-prompt-expansion",
        "rebuilt/UserPromptExpansion.json",
    ),
    (
        "harness-pre-tool-use",
        "claude-code-2.1.197/PreToolUse-Edit.json",
    ),
    (
        "harness-post-tool-use",
        "claude-code-2.1.197/PostToolUse-Edit.json",
    ),
    (
        "harness-post-tool-use-failure",
        "rebuilt/PostToolUseFailure-Bash.json",
    ),
    ("harness-stop", "claude-code-2.1.197/Stop.json"),
    (
        "harness-stop-failure",
        "claude-code-2.1.197/StopFailure-rate_limit.json",
    ),
    (
        "harness-subagent-start",
        "claude-code-2.1.197/SubagentStart.json",
    ),
    (
        "harness-subagent-stop",
        "claude-code-2.1.197/SubagentStop.json",
    ),
    (
        "harness-pre-compact",
        "claude-code-2.1.197/PreCompact-manual.json",
    ),
    (
        "harness-post-compact",
        "claude-code-2.1.197/PostCompact-manual.json",
    ),
    ("harness-notification", "rebuilt/Notification.json"),
    ("harness-session-end", "claude-code-2.1.197/SessionEnd.json"),
];

#[path = "common/floors.rs"]
mod floors;

/// How many of the targets are floors (first in the list; every ratio is against them).
const FLOORS: usize = 3;

const BIG_STORE_EVENTS: usize = 1_000_000;
const CLAIMS: usize = 10_000;
const NOTES: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if floors::run_if_floor(&args) {
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target");
    let scratch = target.join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();

    // A filter that names no 1M target spares building (and copying) the 1M-event store.
    let want_big = std::env::var("BENCH_FILTER").map_or(true, |f| f.contains("1M"));
    let big = target.join("bench-store-1m.db");
    if want_big {
        ensure_big_store(&big, root);
    }

    let me = std::env::current_exe().unwrap();
    let mut targets: Vec<Target> = Vec::new();
    let edit = fixture(root, "claude-code-2.1.197/PreToolUse-Edit.json");
    targets.push(Target::new(
        "floor-parse",
        &me,
        &["floor-parse"],
        edit.clone(),
        None,
    ));
    let naive_db = scratch.join("naive.db");
    targets.push(Target::new(
        "floor-naive",
        &me,
        &["floor-naive", naive_db.to_str().unwrap()],
        edit.clone(),
        None,
    ));
    let bounded_db = scratch.join("bounded.db");
    targets.push(Target::new(
        "floor-bounded",
        &me,
        &["floor-bounded", bounded_db.to_str().unwrap()],
        edit,
        None,
    ));
    // Every 1M target writes one shared copy of the big store (as every hook shares one store);
    // each 0 target starts from its own empty one.
    let big_copy = scratch.join("shared-1M.db");
    let sizes: &[&str] = if want_big {
        std::fs::copy(&big, &big_copy).unwrap();
        // Written out before the first call: otherwise the first checkpoint's fsync of the copy
        // writes all 570 MB of it, and one call of the first 1M target took 180 to 200 ms.
        std::fs::File::open(&big_copy).unwrap().sync_all().unwrap();
        &["0", "1M"]
    } else {
        &["0"]
    };
    for &label in sizes {
        for (bin, rel) in FIXTURES {
            let db = match label {
                "0" => scratch.join(format!("{bin}-0.db")),
                _ => big_copy.clone(),
            };
            targets.push(Target::new(
                &format!("{bin} @{label}"),
                &bin_path(bin),
                &[],
                fixture(root, rel),
                Some(db),
            ));
        }
    }

    // The status line command, on a subscriber's input (official rate limits to record).
    let mut status: serde_json::Value = serde_json::from_slice(&fixture(
        root,
        "claude-code-2.1.197/statusline-api-key.json",
    ))
    .unwrap();
    status["rate_limits"] = serde_json::json!({
        "five_hour": {"used_percentage": 42, "resets_at": 1_900_000_000},
        "seven_day": {"used_percentage": 12, "resets_at": 1_900_500_000}});
    for &label in sizes {
        let db = match label {
            "0" => scratch.join("statusline-0.db"),
            _ => big_copy.clone(),
        };
        targets.push(Target::new(
            &format!("harness-statusline @{label}"),
            &bin_path("harness-statusline"),
            &[],
            status.to_string().into_bytes(),
            Some(db),
        ));
    }

    // File locks: PreToolUse on a store holding 10,000 live claims by other agents, beside the
    // same on a store with none.
    let edit_fixture = fixture(root, "claude-code-2.1.197/PreToolUse-Edit.json");
    let no_claims = scratch.join("claims-0.db");
    let many_claims = scratch.join("claims-10k.db");
    fill_claims(&many_claims, CLAIMS);
    targets.push(Target::new(
        "harness-pre-tool-use, 0 claims",
        &bin_path("harness-pre-tool-use"),
        &[],
        edit_fixture.clone(),
        Some(no_claims),
    ));
    targets.push(Target::new(
        "harness-pre-tool-use, 10k claims",
        &bin_path("harness-pre-tool-use"),
        &[],
        edit_fixture,
        Some(many_claims),
    ));
    // Delegation advice: UserPromptSubmit on prompts a person typed, with the classifier (the
    // default) and with routing switched off, each on its own store. The classifier's weights
    // are compiled in, so its load is in every call.
    let off_config = scratch.join("route-off.json");
    std::fs::write(&off_config, r#"{"route": {"enabled": false}}"#).unwrap();
    let mut prompt: serde_json::Value =
        serde_json::from_slice(&fixture(root, "claude-code-2.1.197/UserPromptSubmit.json"))
            .unwrap();
    let log: String = (0..120)
        .map(|i| {
            format!(
                "2026-11-30T10:{:02}:{:02}Z INFO worker-{} request served in {} ms\n",
                i / 60,
                i % 60,
                i % 7,
                10 + i
            )
        })
        .collect();
    for (label, text) in [
        (
            "broad",
            "Go through the whole repository and give me an overview of every module, what it \
             owns and how they depend on each other; no changes yet."
                .to_owned(),
        ),
        (
            "pasted log",
            format!("read these logs and tell me what happened overnight\n{log}"),
        ),
    ] {
        prompt["prompt"] = serde_json::Value::String(text);
        for (state, config) in [("on", None), ("off", Some(off_config.clone()))] {
            let mut t = Target::new(
                &format!("harness-user-prompt-submit, {label}, route {state}"),
                &bin_path("harness-user-prompt-submit"),
                &[],
                prompt.to_string().into_bytes(),
                Some(scratch.join(format!("route-{label}-{state}.db"))),
            );
            t.config = config;
            targets.push(t);
        }
    }
    // Memory: SessionStart (the project brief) and UserPromptSubmit on a store holding 100,000
    // remembered items of the fixtures' own project, beside the same on a store with none.
    let no_notes = scratch.join("notes-0.db");
    let many_notes = scratch.join("notes-100k.db");
    fill_memory(&many_notes, NOTES);
    for (bin, rel) in [
        (
            "harness-session-start",
            "claude-code-2.1.197/SessionStart-startup.json",
        ),
        (
            "harness-user-prompt-submit",
            "claude-code-2.1.197/UserPromptSubmit.json",
        ),
    ] {
        for (label, db) in [("0 notes", &no_notes), ("100k notes", &many_notes)] {
            targets.push(Target::new(
                &format!("{bin}, {label}"),
                &bin_path(bin),
                &[],
                fixture(root, rel),
                Some(db.clone()),
            ));
        }
    }
    if let Ok(filter) = std::env::var("BENCH_FILTER") {
        // The floors always run: every ratio is against them.
        let mut i = 0;
        targets.retain(|t| {
            i += 1;
            i <= FLOORS || t.name.contains(&filter)
        });
    }
    // One warm-up round that also checks every target runs cleanly.
    for t in &targets {
        let (elapsed, stderr) = t.run();
        assert!(stderr.is_empty(), "{}: {stderr}", t.name);
        let _ = elapsed;
    }
    eprintln!("{} targets x {runs} interleaved rounds ...", targets.len());
    for _ in 0..runs {
        for t in targets.iter_mut() {
            let (elapsed, _) = t.run();
            t.samples.push(elapsed);
        }
    }

    let naive_p50 = targets[1].percentile(0.5);
    let bounded_p50 = targets[2].percentile(0.5);
    println!();
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12}",
        "target (fixture, store size)",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "max ms",
        "p50/naive",
        "p50/bounded"
    );
    let mut worst_ratio: f64 = 0.0;
    let mut worst_growth: Option<f64> = None;
    for t in &targets {
        let ratio = t.percentile(0.5).as_secs_f64() / naive_p50.as_secs_f64();
        if t.db.is_some() {
            worst_ratio = worst_ratio.max(ratio);
        }
        println!(
            "{:<40} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.2}x {:>11.2}x",
            t.name,
            ms(t.percentile(0.5)),
            ms(t.percentile(0.99)),
            ms(t.mean()),
            ms(t.percentile(1.0)),
            ratio,
            t.percentile(0.5).as_secs_f64() / bounded_p50.as_secs_f64()
        );
    }
    println!();
    for (bin, _) in FIXTURES {
        let at = |label: &str| {
            targets
                .iter()
                .find(|t| t.name == format!("{bin} @{label}"))
                .map(|t| t.percentile(0.5))
        };
        if let (Some(big), Some(empty)) = (at("1M"), at("0")) {
            let growth = big.as_secs_f64() / empty.as_secs_f64();
            worst_growth = Some(worst_growth.map_or(growth, |w: f64| w.max(growth)));
        }
    }
    let p50 = |name: &str| {
        targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.percentile(0.5).as_secs_f64())
    };
    if let (Some(none), Some(many)) = (
        p50("harness-pre-tool-use, 0 claims"),
        p50("harness-pre-tool-use, 10k claims"),
    ) {
        println!(
            "PreToolUse p50 with 10,000 live claims / with none: {:.2}x (aim: at most 1.20x)",
            many / none
        );
    }
    for label in ["broad", "pasted log"] {
        let at = |state: &str| {
            p50(&format!(
                "harness-user-prompt-submit, {label}, route {state}"
            ))
        };
        if let (Some(on), Some(off)) = (at("on"), at("off")) {
            println!(
                "UserPromptSubmit ({label} prompt) p50 with delegation advice / without: {:.2}x \
                 (aim: at most 1.20x)",
                on / off
            );
        }
    }
    for bin in ["harness-session-start", "harness-user-prompt-submit"] {
        if let (Some(none), Some(many)) = (
            p50(&format!("{bin}, 0 notes")),
            p50(&format!("{bin}, 100k notes")),
        ) {
            println!(
                "{bin} p50 with 100,000 remembered items / with none: {:.2}x (aim: at most 1.20x)",
                many / none
            );
        }
    }
    println!("worst hook p50 / naive floor p50: {worst_ratio:.2}x (aim: at most 0.80x)");
    if let Some(growth) = worst_growth {
        println!("worst hook p50 at 1M events / at 0: {growth:.2}x (aim: at most 1.20x)");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fixture(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join("tests/fixtures").join(rel)).unwrap()
}

fn bin_path(name: &str) -> PathBuf {
    let var = format!("CARGO_BIN_EXE_{name}");
    std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run through `cargo bench --bench hooks`"))
}

struct Target {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    stdin: Vec<u8>,
    db: Option<PathBuf>,
    /// The config file (`HARNESS_CONFIG`); none: the defaults.
    config: Option<PathBuf>,
    samples: Vec<Duration>,
}

impl Target {
    fn new(
        name: &str,
        program: &Path,
        args: &[&str],
        stdin: Vec<u8>,
        db: Option<PathBuf>,
    ) -> Target {
        Target {
            name: name.to_owned(),
            program: program.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin,
            db,
            config: None,
            samples: Vec::new(),
        }
    }

    fn run(&self) -> (Duration, String) {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env(
                "HARNESS_CONFIG",
                self.config.as_deref().unwrap_or(Path::new("/dev/null")),
            );
        if let Some(db) = &self.db {
            cmd.env("HARNESS_DB", db);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&self.stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let elapsed = started.elapsed();
        assert!(out.status.success(), "{} failed", self.name);
        (elapsed, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s
    }

    fn percentile(&self, p: f64) -> Duration {
        let s = self.sorted();
        s[((s.len() as f64 - 1.0) * p).round() as usize]
    }

    fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }
}

/// A new store holding `n` live claims of other agents' sessions (one claim per file).
fn fill_claims(path: &Path, n: usize) {
    use agent_harness::store::claims::{self, Claim};
    let mut store = Store::open(path, Duration::from_secs(5)).unwrap();
    let far = 4_000_000_000_000i64;
    store
        .write(|tx| {
            for i in 0..n {
                let claim = Claim {
                    path: format!("/home/dev/other-{}/src/file{i:05}.rs", i % 40),
                    session_id: format!("other-session-{:03}", i % 40),
                    agent: "claude".into(),
                    project_root: Some(format!("/home/dev/other-{}", i % 40)),
                    tool_name: Some("Edit".into()),
                    claimed_ms: 1_790_000_000_000,
                    touched_ms: 1_790_000_000_000,
                    expires_ms: far,
                };
                claims::put(tx, &claim)
                    .map_err(|e| agent_harness::error::Error::db("bench claims", path, e))?;
            }
            Ok(())
        })
        .unwrap();
}

/// A store holding `n` remembered items of the fixtures' project (`/home/dev/project`): turn
/// summaries of 2,000 sessions and notes, each about 200 characters of project words.
fn fill_memory(path: &Path, n: usize) {
    const WORDS: &[&str] = &[
        "parser",
        "lock",
        "table",
        "importer",
        "export",
        "stream",
        "quota",
        "gemini",
        "claude",
        "review",
        "finding",
        "snapshot",
        "compaction",
        "brief",
        "session",
        "store",
        "migration",
        "hook",
        "event",
        "payload",
        "redact",
        "token",
        "config",
        "budget",
        "route",
        "file",
        "inode",
        "wal",
        "checkpoint",
        "spool",
        "status",
        "cache",
    ];
    let mut store = Store::open(path, Duration::from_secs(5)).unwrap();
    let mut seed = 7u64;
    store
        .write(|tx| {
            for i in 0..n {
                let text: Vec<&str> = (0..30)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        WORDS[(seed >> 33) as usize % WORDS.len()]
                    })
                    .collect();
                let (kind, session) = match i % 10 {
                    0..7 => ("turn", Some(format!("bench-session-{:04}", i / 50))),
                    _ => ("note", None),
                };
                agent_harness::store::memory::add(
                    tx,
                    kind,
                    session.as_deref(),
                    "claude",
                    "/home/dev/project",
                    1_790_000_000_000 + i as i64,
                    &text.join(" "),
                )
                .map_err(|e| agent_harness::error::Error::db("bench memory", path, e))?;
            }
            Ok(())
        })
        .unwrap();
}

/// Builds (once) a store of 1M events shaped like real use: 2,000 sessions of 500 events each,
/// cycling through the recorded fixtures, with their tool calls joined.
fn ensure_big_store(path: &Path, root: &Path) {
    if let Ok(conn) = rusqlite::Connection::open(path)
        && conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .is_ok_and(|n| n as usize >= BIG_STORE_EVENTS)
    {
        return;
    }
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(agent_harness::store::wal_path(path));
    eprintln!(
        "building a store of {BIG_STORE_EVENTS} events at {} (once) ...",
        path.display()
    );
    let started = Instant::now();
    let payloads: Vec<serde_json::Value> = FIXTURES
        .iter()
        .map(|(_, rel)| serde_json::from_slice(&fixture(root, rel)).unwrap())
        .collect();
    let mut store = Store::open(path, Duration::from_secs(5)).unwrap();
    let per_session = 500;
    let mut written = 0;
    let mut now = 1_790_000_000_000i64;
    while written < BIG_STORE_EVENTS {
        store
            .write(|tx| {
                for _ in 0..100_000 {
                    let session = written / per_session;
                    let mut v = payloads[written % payloads.len()].clone();
                    v["session_id"] = format!("bench-session-{session:06}").into();
                    if v.get("tool_use_id").is_some() {
                        v["tool_use_id"] = format!("toolu_{}", written / 2).into();
                    }
                    let p = HookPayload::view(&v).unwrap();
                    let rec = Recording::of(&Event::reduce(p), now, None);
                    rec.apply(tx)
                        .map_err(|e| agent_harness::error::Error::db("bench insert", path, e))?;
                    written += 1;
                    now += 250;
                }
                Ok(())
            })
            .unwrap();
    }
    // Leave it checkpointed, as a long-lived store would mostly be.
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
}
