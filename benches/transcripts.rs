//! Transcript reader benchmark: `cargo bench --bench transcripts`.
//!
//! Measures, in one run and on one synthetic history of Claude Code transcripts (about 3,000
//! files, 1 GiB):
//!
//! - `reader`: [`find_transcripts`] + [`scan_all`], the full scan;
//! - `cat`: `cat` of the same files to `/dev/null`, the floor (reading the bytes at all);
//! - `ccusage`: `ccusage blocks --json --offline` (ccusage 20.0.24 from the npm registry,
//!   installed into `~/.cache/agent-harness/ccusage-20.0.24` if missing; skipped with a message
//!   if that fails), with `CLAUDE_CONFIG_DIR` pointing at the history;
//! - `incremental`: after a full scan, 1 MiB of new lines appended to the largest file, then
//!   [`Tracker::refresh`] over every file (one `stat` each, reads only the new bytes);
//!
//! and checks that the reader's token totals (input, output, cache creation, cache read) equal
//! ccusage's, summed over its blocks, and so do those of `harness usage blocks --json` and
//! `harness usage daily --json` on the same history. Full scans run in interleaved rounds (`BENCH_RUNS`, default
//! 5) after one untimed `cat` that brings the files into the page cache; min and median are shown.
//!
//! The history is generated on first run into `target/bench-history/` (kept; regenerated when
//! its manifest does not match) by the deterministic generator below: fixed seed, own PRNG.
//! Files are shaped like real transcripts (reference §4): user prompts, tool results with large
//! text (and `toolUseResult` copies), assistant responses written as one line per content block
//! with the same id, request id and usage (streamed ones with partial `output_tokens` on the
//! early lines), system and attachment lines, `<synthetic>` API errors, subagent files under
//! `<session>/subagents/` with `isSidechain: true` (some starting with a `/btw`-style replay of a
//! parent response under a new request id: half at the parent's time, which merges with it, half
//! later, which counts again), older versions without the cache split, `speed: "fast"`, text
//! quoting the fields the reader looks for, a tool result whose `toolUseResult` carries a real
//! `usage` object, and a few lines both readers must refuse. Median file about 100 KB; five files
//! of 50-90 MB.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_harness::usage::transcript::{Tokens, Tracker, find_transcripts, read_new, scan_all};
use serde_json::{Value, json};

const SEED: u64 = 0x5eed_2026_1121;
const FILES: usize = 3000;
const SUBAGENT_FILES: usize = 400;
const TOTAL_BYTES: u64 = 1 << 30;
const BIG_FILES_MB: [u64; 5] = [50, 60, 70, 80, 90];
const GENERATOR_VERSION: u32 = 7;
const CCUSAGE_VERSION: &str = "20.0.24";

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let history = root.join("target/bench-history");
    let manifest = ensure_history(&history);
    let paths = find_transcripts(&history);
    let mut sizes: Vec<u64> = paths.iter().map(|p| p.metadata().unwrap().len()).collect();
    sizes.sort();
    let bytes: u64 = sizes.iter().sum();
    let subagents = paths
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("subagents")))
        .count();
    println!(
        "history: {} files ({subagents} subagent files), {:.1} MiB, median file {:.0} KB, \
         largest {:.0} MB, in {}",
        paths.len(),
        bytes as f64 / (1 << 20) as f64,
        sizes[sizes.len() / 2] as f64 / 1e3,
        sizes[sizes.len() - 1] as f64 / 1e6,
        history.display()
    );
    assert_eq!(
        paths.len(),
        manifest.files,
        "find_transcripts finds every generated file"
    );

    cat(&paths); // into the page cache
    let mut reader_times = Vec::new();
    let mut cat_times = Vec::new();
    let mut find_times = Vec::new();
    let mut scan = None;
    for _ in 0..runs {
        let t = Instant::now();
        let found = find_transcripts(&history);
        find_times.push(t.elapsed());
        let s = scan_all(&found);
        reader_times.push(t.elapsed());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        scan = Some(s);
        cat_times.push(cat(&paths));
    }
    let scan = scan.unwrap();
    let ours = Tokens::sum(&scan.entries);

    let ccusage = ccusage_program();
    let mut ccusage_times = Vec::new();
    let mut launcher_times = Vec::new();
    let mut theirs = None;
    if let Some(program) = &ccusage {
        let check = ccusage_debug(program, &history);
        println!(
            "ccusage --debug: {check} (the reader keeps {} responses; ccusage also keeps the {} \
             zero-usage API-error lines)",
            scan.entries.len(),
            manifest.api_errors
        );
        for _ in 0..runs.min(3) {
            let (elapsed, totals) = run_ccusage(program, &history);
            ccusage_times.push(elapsed);
            theirs = Some(totals);
            // The npm launcher is a Node script that starts the native binary: its own cost.
            let t = Instant::now();
            Command::new(program).arg("--version").output().unwrap();
            launcher_times.push(t.elapsed());
        }
    }

    // `harness usage` on the same history (before the incremental step appends to it): its
    // blocks' and days' token totals, to set beside ccusage's.
    let harness_usage = |report: &str| -> Tokens {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["usage", report, "--json", "--claude-dir"])
            .arg(&history)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success(), "harness usage {report} failed");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut t = Tokens::default();
        if report == "blocks" {
            for block in v["blocks"].as_array().unwrap() {
                let n = |k: &str| block["tokenCounts"][k].as_u64().unwrap();
                t.input += n("inputTokens");
                t.output += n("outputTokens");
                t.cache_creation += n("cacheCreationInputTokens");
                t.cache_read += n("cacheReadInputTokens");
            }
        } else {
            let n = |k: &str| v["totals"][k].as_u64().unwrap();
            t = Tokens {
                input: n("inputTokens"),
                output: n("outputTokens"),
                cache_creation: n("cacheCreationTokens"),
                cache_read: n("cacheReadTokens"),
            };
        }
        t
    };
    let usage_blocks = harness_usage("blocks");
    let usage_daily = harness_usage("daily");

    let inc = incremental(&history, &paths, runs);
    let through_store = store_path(&history, &paths, runs);

    println!();
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "full scan", "min s", "median s", "GB/s med"
    );
    // `bytes` = Some(n) shows the rate of reading n bytes.
    let row = |name: &str, times: &mut Vec<Duration>, bytes: Option<u64>| {
        if times.is_empty() {
            return;
        }
        times.sort();
        let min = times[0].as_secs_f64();
        let median = times[times.len() / 2].as_secs_f64();
        let rate = bytes.map_or("-".to_string(), |b| {
            format!("{:.2}", b as f64 / median / 1e9)
        });
        println!("{name:<44} {min:>9.3} {median:>9.3} {rate:>9}");
    };
    row(
        "reader (find_transcripts + scan_all)",
        &mut reader_times,
        Some(bytes),
    );
    row("  of which find_transcripts", &mut find_times, None);
    row("cat > /dev/null", &mut cat_times, Some(bytes));
    row(
        &format!("ccusage {CCUSAGE_VERSION} blocks --json --offline"),
        &mut ccusage_times,
        Some(bytes),
    );
    row(
        "  of which its launcher (ccusage --version)",
        &mut launcher_times,
        None,
    );
    let median = |t: &mut Vec<Duration>| median(t).as_secs_f64();
    println!();
    println!(
        "reader / cat (medians): {:.2}x (aim: at most 1.5x)",
        median(&mut reader_times) / median(&mut cat_times)
    );
    if !ccusage_times.is_empty() {
        println!(
            "ccusage / reader (medians): {:.2}x (aim: at least 3x)",
            median(&mut ccusage_times) / median(&mut reader_times)
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!(
        "incremental update, {:.2} MiB appended to the largest file (medians of {runs} rounds):",
        inc.appended as f64 / (1 << 20) as f64
    );
    println!(
        "  Tracker::refresh over all {} files: {:.2} ms (aim: under 20 ms)",
        paths.len(),
        ms(inc.refresh)
    );
    println!(
        "  read_new of that file alone:        {:.2} ms",
        ms(inc.read_new)
    );
    println!(
        "  Tracker::refresh, nothing new:      {:.2} ms",
        ms(inc.idle)
    );
    println!(
        "  floor, one stat of every file:      {:.2} ms",
        ms(inc.stat)
    );
    println!();
    println!("through the harness's store (what `harness quota` and the hooks run):");
    println!(
        "  first read of everything, stored:   {:.3} s ({} responses)",
        through_store.full.as_secs_f64(),
        through_store.responses
    );
    println!(
        "  after 1 MiB appended, all files:    {:.2} ms (aim: under 20 ms)",
        ms(through_store.incremental)
    );
    println!(
        "  after 1 MiB appended, one session:  {:.2} ms (a Stop or prompt hook, the status line)",
        ms(through_store.one)
    );
    let show = |(k, d): (usize, Option<Duration>)| match d {
        Some(d) => format!("{k} round(s), median {:.2} ms", ms(d)),
        None => format!("{k} rounds"),
    };
    println!(
        "    writes that checkpointed the WAL: {}; the others: {}",
        show(through_store.one_checkpointed),
        show(through_store.one_plain)
    );
    println!(
        "    of which the estimates' refresh:  {:.2} ms (over {} responses of the last 7 days)",
        ms(through_store.estimates),
        through_store.week_rows
    );
    println!();
    println!(
        "reader totals:  {} responses; input {}, output {}, cache creation {}, cache read {}",
        scan.entries.len(),
        ours.input,
        ours.output,
        ours.cache_creation,
        ours.cache_read
    );
    match theirs {
        Some(theirs) => {
            println!(
                "ccusage totals: input {}, output {}, cache creation {}, cache read {}",
                theirs.input, theirs.output, theirs.cache_creation, theirs.cache_read
            );
            println!(
                "totals equal: {}",
                if theirs == ours { "yes" } else { "NO" }
            );
            println!(
                "harness usage blocks / daily totals equal ccusage blocks: {} / {}",
                if usage_blocks == theirs { "yes" } else { "NO" },
                if usage_daily == theirs { "yes" } else { "NO" }
            );
        }
        None => println!(
            "ccusage totals: not measured (ccusage could not be installed); harness usage \
             blocks / daily totals equal the reader's: {} / {}",
            usage_blocks == ours,
            usage_daily == ours
        ),
    }
}

/// `cat` of every file to /dev/null; its wall time.
fn cat(paths: &[PathBuf]) -> Duration {
    let t = Instant::now();
    let status = Command::new("cat")
        .args(paths)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    t.elapsed()
}

/// The ccusage launcher, installed from the npm registry into the cache if missing.
fn ccusage_program() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let prefix = home.join(format!(".cache/agent-harness/ccusage-{CCUSAGE_VERSION}"));
    let program = prefix.join("node_modules/.bin/ccusage");
    let works = |p: &Path| {
        Command::new(p).arg("--version").output().is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CCUSAGE_VERSION)
        })
    };
    if works(&program) {
        return Some(program);
    }
    eprintln!(
        "installing ccusage@{CCUSAGE_VERSION} into {} ...",
        prefix.display()
    );
    let installed = std::fs::create_dir_all(&prefix).is_ok()
        && Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .arg(format!("ccusage@{CCUSAGE_VERSION}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if installed && works(&program) {
        Some(program)
    } else {
        println!("ccusage: skipped (ccusage@{CCUSAGE_VERSION} could not be installed with npm)");
        None
    }
}

fn ccusage_command(program: &Path, history: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["blocks", "--json", "--offline"])
        .env("CLAUDE_CONFIG_DIR", history)
        .env("NO_COLOR", "1")
        .env_remove("LOG_LEVEL")
        .stderr(Stdio::piped());
    cmd
}

/// What ccusage says it read (its `--debug` lines), to show it read exactly the history.
fn ccusage_debug(program: &Path, history: &Path) -> String {
    let out = ccusage_command(program, history)
        .arg("--debug")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("Found") || l.starts_with("Loaded") || l.starts_with("Kept"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One timed `ccusage blocks` run and its token totals over all blocks.
fn run_ccusage(program: &Path, history: &Path) -> (Duration, Tokens) {
    let t = Instant::now();
    let out = ccusage_command(program, history).output().unwrap();
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "ccusage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut totals = Tokens::default();
    for block in report["blocks"].as_array().unwrap() {
        let n = |k: &str| block["tokenCounts"][k].as_u64().unwrap();
        totals.input += n("inputTokens");
        totals.output += n("outputTokens");
        totals.cache_creation += n("cacheCreationInputTokens");
        totals.cache_read += n("cacheReadInputTokens");
    }
    (elapsed, totals)
}

/// Timings of the incremental update, each a median over rounds.
struct Incremental {
    /// `Tracker::refresh` over every file after 1 MiB was appended to the largest.
    refresh: Duration,
    /// `read_new` of that file alone, from its cursor.
    read_new: Duration,
    /// `Tracker::refresh` when nothing changed.
    idle: Duration,
    /// One `stat` of every file: the floor of a refresh that must look at every file.
    stat: Duration,
    /// Bytes appended per round.
    appended: u64,
}

/// Cuts a transcript the rounds appended to back to its generated length.
fn cut_back(path: &Path, len: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The largest transcript (the one the incremental rounds append to) and its length.
fn largest_file(paths: &[PathBuf]) -> (PathBuf, u64) {
    paths
        .iter()
        .map(|p| (p.clone(), p.metadata().unwrap().len()))
        .max_by_key(|(_, len)| *len)
        .unwrap()
}

/// After a full scan: rounds of 1 MiB appended to the largest file, each followed by the timed
/// refresh. Checks the result against a fresh full scan, then cuts the file back to its generated
/// length.
fn incremental(history: &Path, paths: &[PathBuf], rounds: usize) -> Incremental {
    let (largest, original_len) = largest_file(paths);
    let mut tracker = Tracker::new();
    assert!(tracker.refresh(paths).is_empty());
    let mut rng = Rng(SEED ^ 0xa11);
    let pool = TextPool::new(&mut rng);
    let (mut refresh, mut read_new_times, mut idle, mut stat) = (vec![], vec![], vec![], vec![]);
    let mut appended = 0;
    for round in 0..rounds {
        let cursor = tracker
            .cursors()
            .find(|c| c.path == largest)
            .unwrap()
            .clone();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&largest)
            .unwrap();
        let kind = SessionKind::main(&mut rng, "2.1.197");
        let mut session = Session::new(file, &mut rng, &pool, kind, 1_790_000_000_000);
        session.target = 1 << 20;
        while session.written < 1 << 20 {
            session.turn();
        }
        appended = session.finish();

        let t = Instant::now();
        let (new_entries, _) = read_new(&largest, Some(&cursor)).unwrap();
        read_new_times.push(t.elapsed());
        assert!(!new_entries.is_empty());
        let before = tracker.entries().len();
        let t = Instant::now();
        let errors = tracker.refresh(paths);
        refresh.push(t.elapsed());
        assert!(errors.is_empty(), "{errors:?}");
        assert!(
            tracker.entries().len() > before,
            "round {round} read the new lines"
        );

        let t = Instant::now();
        tracker.refresh(paths);
        idle.push(t.elapsed());
        let t = Instant::now();
        for p in paths {
            std::hint::black_box(p.metadata().unwrap());
        }
        stat.push(t.elapsed());
    }
    let fresh = scan_all(&find_transcripts(history));
    assert_eq!(
        tracker.totals(),
        Tokens::sum(&fresh.entries),
        "incremental totals equal a fresh full scan"
    );
    assert_eq!(tracker.entries().len(), fresh.entries.len());
    cut_back(&largest, original_len);
    Incremental {
        refresh: median(&mut refresh),
        read_new: median(&mut read_new_times),
        idle: median(&mut idle),
        stat: median(&mut stat),
        appended,
    }
}

struct StorePath {
    full: Duration,
    responses: usize,
    incremental: Duration,
    one: Duration,
    /// `one`'s rounds whose write checkpointed the WAL, and the others: (rounds, median).
    one_checkpointed: (usize, Option<Duration>),
    one_plain: (usize, Option<Duration>),
    /// Of `one`: refreshing the estimates from the stored usage (2 days of rows for the 5-hour
    /// blocks, 7 days summed), and the rows the week holds.
    estimates: Duration,
    week_rows: i64,
}

/// Appends about 1 MiB of realistic turns (the generator's) to `path`.
fn append_turns(path: &Path, rng: &mut Rng, pool: &TextPool) {
    let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let kind = SessionKind::main(rng, "2.1.197");
    let mut session = Session::new(file, rng, pool, kind, 1_790_000_000_000);
    session.target = 1 << 20;
    while session.written < 1 << 20 {
        session.turn();
    }
    session.finish();
}

/// The harness's own path: read every transcript into a store; then, after 1 MiB is appended,
/// read on from the stored cursors (every file, and one file as a hook does).
fn store_path(history: &Path, paths: &[PathBuf], rounds: usize) -> StorePath {
    use agent_harness::config::QuotaConfig;
    use agent_harness::quota::ingest;
    use agent_harness::store::Store;
    let dir = history.with_file_name(format!("bench-quota-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("harness.db");
    let mut store = Store::open(&db, Duration::from_secs(5)).unwrap();
    let cfg = QuotaConfig::default();
    let now = 1_795_000_000_000;
    let store_all = |store: &mut Store| -> usize {
        let refresh = ingest::read_everything(store.reader().unwrap(), history).unwrap();
        assert!(refresh.errors.is_empty());
        store
            .write(|tx| Ok(ingest::store_everything(tx, refresh, &cfg, now).unwrap()))
            .unwrap()
    };
    let t = Instant::now();
    let responses = store_all(&mut store);
    let full = t.elapsed();
    let (largest, original_len) = largest_file(paths);
    let (mut incremental, mut one, mut estimates) = (vec![], vec![], vec![]);
    let (mut one_checkpointed, mut one_plain) = (vec![], vec![]);
    let mut rng = Rng(SEED ^ 0x5707e);
    let pool = TextPool::new(&mut rng);
    for _ in 0..rounds {
        append_turns(&largest, &mut rng, &pool);
        let t = Instant::now();
        assert!(store_all(&mut store) > 0);
        incremental.push(t.elapsed());
        append_turns(&largest, &mut rng, &pool);
        let t = Instant::now();
        let read = ingest::read_one(
            store.reader().unwrap(),
            &largest,
            ingest::HOOK_MAX_NEW_BYTES,
        )
        .unwrap()
        .unwrap();
        let wal_len =
            || std::fs::metadata(agent_harness::store::wal_path(&db)).map_or(0, |m| m.len());
        let wal_before = wal_len();
        let n = store
            .write(|tx| Ok(ingest::store_one(tx, read, &cfg, now).unwrap()))
            .unwrap();
        let took = t.elapsed();
        one.push(took);
        // The write that takes the WAL past its bound also checkpoints it (see `store`).
        if wal_len() < wal_before.max(1) {
            one_checkpointed.push(took);
        } else {
            one_plain.push(took);
        }
        assert!(n > 0);
        let t = Instant::now();
        store
            .write(|tx| {
                agent_harness::quota::refresh_estimates(tx, &cfg, now).unwrap();
                Ok(())
            })
            .unwrap();
        estimates.push(t.elapsed());
    }
    let week_rows: i64 = store
        .reader()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM usage WHERE ts_ms >= ?1",
            [now - agent_harness::quota::WEEK_MS],
            |r| r.get(0),
        )
        .unwrap();
    cut_back(&largest, original_len);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    StorePath {
        full,
        responses,
        incremental: median(&mut incremental),
        one: median(&mut one),
        one_checkpointed: (
            one_checkpointed.len(),
            (!one_checkpointed.is_empty()).then(|| median(&mut one_checkpointed)),
        ),
        one_plain: (
            one_plain.len(),
            (!one_plain.is_empty()).then(|| median(&mut one_plain)),
        ),
        estimates: median(&mut estimates),
        week_rows,
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Manifest {
    files: usize,
    /// `<synthetic>` API-error lines written: ccusage keeps them as entries (zero tokens), the
    /// reader skips them.
    api_errors: usize,
}

/// API-error lines written by the generator.
static API_ERRORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Generates the history unless a complete one of this generator version is there.
fn ensure_history(history: &Path) -> Manifest {
    let marker = history.join(format!(".generated-v{GENERATOR_VERSION}"));
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((files, api_errors)) = text.trim().split_once(' ')
        && let (Ok(files), Ok(api_errors)) = (files.parse(), api_errors.parse())
        && find_transcripts(history).len() == files
    {
        return Manifest { files, api_errors };
    }
    let tmp = history.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(history);
    eprintln!(
        "generating the benchmark history into {} ...",
        history.display()
    );
    let t = Instant::now();
    let files = generate(&tmp);
    let api_errors = API_ERRORS.load(std::sync::atomic::Ordering::Relaxed);
    std::fs::write(
        tmp.join(format!(".generated-v{GENERATOR_VERSION}")),
        format!("{files} {api_errors}"),
    )
    .unwrap();
    std::fs::rename(&tmp, history).unwrap();
    eprintln!(
        "generated {files} files in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Manifest { files, api_errors }
}

/// Writes the history under `root`; returns the number of transcript files.
fn generate(root: &Path) -> usize {
    let mut rng = Rng(SEED);
    let pool = TextPool::new(&mut rng);
    let projects: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "-home-dev-{}-{}",
                ["app", "api", "infra", "web", "lib"][i % 5],
                i
            )
        })
        .collect();

    // Sizes: five big files, the rest log-normal around 100 KB, scaled to fill 1 GiB.
    let small_count = FILES - BIG_FILES_MB.len() - 1;
    let mut sizes: Vec<f64> = (0..small_count)
        .map(|_| (100_000.0 * (1.35 * rng.normal()).exp()).clamp(2_000.0, 20e6))
        .collect();
    let big: u64 = BIG_FILES_MB.iter().map(|mb| mb * 1_000_000).sum();
    let scale = (TOTAL_BYTES - big) as f64 / sizes.iter().sum::<f64>();
    sizes.iter_mut().for_each(|s| *s *= scale);

    // Which small files are subagents, and of which session: groups of 1-6 after a main file.
    let mut plan: Vec<(u64, bool)> = Vec::new(); // (target size, is subagent of the last main)
    let mut subagents_left = SUBAGENT_FILES;
    let mut i = 0;
    while i < sizes.len() {
        plan.push((sizes[i] as u64, false));
        i += 1;
        if subagents_left > 0 && rng.chance(0.12) {
            for _ in 0..rng.range(1, 6).min(subagents_left as u64) {
                if i < sizes.len() {
                    plan.push((sizes[i] as u64, true));
                    i += 1;
                    subagents_left -= 1;
                }
            }
        }
    }
    for (n, mb) in BIG_FILES_MB.iter().enumerate() {
        plan.insert(n * 500 + 250, (mb * 1_000_000, false));
    }

    let start_ms: i64 = 1_788_000_000_000; // 2026-08-29
    let mut files = 0;
    let mut parent: Option<Parent> = None;
    for (n, &(size, subagent)) in plan.iter().enumerate() {
        let project = &projects[rng.below(projects.len() as u64) as usize];
        let ts = start_ms + n as i64 * 1_700_000 + rng.below(600_000) as i64;
        let version = match rng.below(100) {
            0..=4 => "1.0.98",
            5..=14 => "2.0.14",
            _ => "2.1.197",
        };
        if subagent
            && let Some(Parent {
                dir,
                session_id,
                responses,
            }) = &parent
        {
            let agent = rng.hex(17);
            let dir = dir.join(session_id).join("subagents");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join(format!("agent-{agent}.meta.json")),
                json!({"agentType": "Explore", "description": "look around", "toolUseId": format!("toolu_{}", rng.hex(24)), "spawnDepth": 1}).to_string(),
            )
            .unwrap();
            let file = File::create(dir.join(format!("agent-{agent}.jsonl"))).unwrap();
            let kind = SessionKind {
                session_id: session_id.clone(),
                version: "2.1.197",
                agent_id: Some(agent),
            };
            let mut s = Session::new(file, &mut rng, &pool, kind, ts);
            s.target = size;
            // A `/btw`-style replay of a parent response: its line copied into the sidechain
            // under a new request id (ccusage#913); half of them at a later time, which ccusage
            // 20.0.24 counts as another response.
            if s.rng.chance(0.3) && !responses.is_empty() {
                let mut line = responses[s.rng.below(responses.len() as u64) as usize].clone();
                line["isSidechain"] = json!(true);
                line["agentId"] = json!(s.kind.agent_id);
                line["requestId"] = json!(format!("req_{}", s.rng.hex(24)));
                line["uuid"] = json!(s.rng.uuid());
                if s.rng.chance(0.5) {
                    line["timestamp"] = json!(s.ts());
                }
                s.line(&line);
            }
            while s.written < size {
                s.turn();
            }
            s.finish();
        } else {
            let dir = root.join("projects").join(project);
            std::fs::create_dir_all(&dir).unwrap();
            let kind = SessionKind::main(&mut rng, version);
            let session_id = kind.session_id.clone();
            let file = File::create(dir.join(format!("{session_id}.jsonl"))).unwrap();
            let mut s = Session::new(file, &mut rng, &pool, kind, ts);
            s.target = size;
            while s.written < size {
                s.turn();
            }
            let responses = std::mem::take(&mut s.responses);
            s.finish();
            parent = Some(Parent {
                dir,
                session_id,
                responses,
            });
        }
        files += 1;
    }
    // The counting rules at their edges, each case once: lines both readers refuse, and lines
    // whose merge or count depends on the rule, beside ordinary turns.
    let dir = root.join("projects").join(&projects[0]);
    let file = File::create(dir.join("edge-cases.jsonl")).unwrap();
    let kind = SessionKind::main(&mut rng, "2.1.197");
    let mut s = Session::new(file, &mut rng, &pool, kind, start_ms);
    s.turn();
    let edge = |s: &mut Session, output: u64, changes: &[(&str, Value)]| {
        let message_id = format!("msg_{}", s.rng.hex(24));
        let request_id = format!("req_{}", s.rng.hex(24));
        let mut line = s.assistant_line(
            &message_id,
            &request_id,
            json!({"type": "text", "text": "edge"}),
            Some("end_turn"),
            &usage_value("2.1.197", 100, output, 5, 1000, Some("standard")),
        );
        for (pointer, value) in changes {
            set(&mut line, pointer, value.clone());
        }
        s.line(&line);
        line
    };
    // Refused by both.
    for change in [
        ("/version", json!("unknown")),
        ("/version", json!(null)),
        ("/requestId", json!("")),
        ("/message/id", json!("")),
        ("/message/model", json!(null)),
        ("/sessionId", json!("")),
        ("/timestamp", json!("yesterday")),
        ("/timestamp", json!("2026-02-30T10:00:00.000Z")),
        ("/message/usage/output_tokens", json!(1.5)),
        ("/message/usage/cache_read_input_tokens", json!(null)),
        ("/message/usage/speed", json!(null)),
        ("/cwd", json!(null)),
    ] {
        edge(&mut s, 10, &[change]);
    }
    // Counted by both, in their own way.
    edge(&mut s, 11, &[("/version", json!("2.1.197-beta.1"))]);
    edge(&mut s, 12, &[("/isApiErrorMessage", json!(false))]);
    edge(&mut s, 13, &[("/isSidechain", json!(null))]);
    edge(
        &mut s,
        14,
        &[("/timestamp", json!("2026-08-29T12:00:00.123+02:00"))],
    );
    edge(&mut s, 15, &[("/message/usage/cache_creation", json!({}))]);
    edge(
        &mut s,
        16,
        &[("/message/usage/cache_creation", json!(null))],
    );
    // An exact copy in a sidechain with more tokens: the main-chain line stays.
    let main = edge(&mut s, 17, &[]);
    let mut copy = main.clone();
    copy["isSidechain"] = json!(true);
    copy["message"]["usage"]["output_tokens"] = json!(9000);
    s.line(&copy);
    // Replays under a new request id: merged at the same time in the same session only.
    for (time, session) in [(false, false), (true, false), (false, true)] {
        let mut replay = main.clone();
        replay["isSidechain"] = json!(true);
        replay["requestId"] = json!(format!("req_{}", s.rng.hex(24)));
        replay["message"]["usage"]["output_tokens"] = json!(7000);
        if time {
            replay["timestamp"] = json!(s.ts());
        }
        if session {
            replay["sessionId"] = json!(s.rng.uuid());
        }
        s.line(&replay);
    }
    s.turn();
    s.finish();
    files + 1
}

/// The main session that subagent files are written for.
struct Parent {
    dir: PathBuf,
    session_id: String,
    /// The last lines of its last responses, for `/btw`-style replays.
    responses: Vec<Value>,
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent).unwrap()[key] = value;
}

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Log-uniform between `lo` and `hi`: many small, some large.
    fn size(&mut self, lo: u64, hi: u64) -> usize {
        ((lo as f64).ln() + self.unit() * ((hi as f64).ln() - (lo as f64).ln())).exp() as usize
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-8{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Eight MiB of text to cut slices from: prose, code with quotes and backslashes, some
/// non-ASCII, and now and then the very JSON the reader looks for, quoted.
struct TextPool(String);

impl TextPool {
    fn new(rng: &mut Rng) -> TextPool {
        const WORDS: &[&str] = &[
            "the",
            "file",
            "function",
            "returns",
            "error",
            "value",
            "test",
            "config",
            "path",
            "let",
            "fn",
            "match",
            "Some(x)",
            "None",
            "=>",
            "{",
            "}",
            "();",
            "\"quoted\"",
            "C:\\dir\\file",
            "\\n",
            "\\\"",
            "self.read()",
            "cargo",
            "build",
            "résumé",
            "→",
            "日本語",
            "usage",
            "tokens",
            "assistant",
            "type",
            "message",
            "id",
            "// comment",
        ];
        const DECOYS: &[&str] = &[
            r#"{"type":"assistant","message":{"id":"msg_decoy","usage":{"input_tokens":999999,"output_tokens":999999}},"requestId":"req_decoy"}"#,
            r#""usage":{"input_tokens":5,"output_tokens":5}"#,
            r#"\"}]},"type":"assistant","x":{"#,
        ];
        let mut text = String::with_capacity(8 << 20);
        while text.len() < 8 << 20 {
            match rng.below(1000) {
                0 => text.push_str(DECOYS[rng.below(DECOYS.len() as u64) as usize]),
                1..=60 => text.push('\n'),
                61..=70 => text.push_str("\n    "),
                _ => {
                    text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                    text.push(' ');
                }
            }
        }
        TextPool(text)
    }

    /// About `len` bytes from a random place.
    fn slice(&self, rng: &mut Rng, len: usize) -> &str {
        let len = len.min(self.0.len() / 2);
        let mut start = rng.below((self.0.len() - len) as u64) as usize;
        while !self.0.is_char_boundary(start) {
            start += 1;
        }
        let mut end = (start + len).min(self.0.len());
        while !self.0.is_char_boundary(end) {
            end += 1;
        }
        &self.0[start..end]
    }

    /// Text bigger than the pool: slices joined.
    fn text(&self, rng: &mut Rng, len: usize) -> String {
        let mut s = String::with_capacity(len + 64);
        while s.len() < len {
            let part = (len - s.len()).min(1 << 20);
            s.push_str(self.slice(rng, part));
        }
        s
    }
}

struct SessionKind {
    session_id: String,
    version: &'static str,
    /// A subagent's id: its lines are sidechain lines of the parent session.
    agent_id: Option<String>,
}

impl SessionKind {
    /// A main session with a new id.
    fn main(rng: &mut Rng, version: &'static str) -> SessionKind {
        SessionKind {
            session_id: rng.uuid(),
            version,
            agent_id: None,
        }
    }
}

/// One transcript being written.
struct Session<'a> {
    out: BufWriter<File>,
    rng: &'a mut Rng,
    pool: &'a TextPool,
    kind: SessionKind,
    model: &'static str,
    cwd: String,
    ts_ms: i64,
    parent: Option<String>,
    written: u64,
    /// Where the file should stop growing: text is cut to fit, so files land near their size.
    target: u64,
    /// The last line of each of the last responses written.
    responses: Vec<Value>,
    /// A running context size, so cache reads grow through a session as they do.
    context: u64,
}

impl<'a> Session<'a> {
    fn new(
        file: File,
        rng: &'a mut Rng,
        pool: &'a TextPool,
        kind: SessionKind,
        ts_ms: i64,
    ) -> Session<'a> {
        let model = match rng.below(10) {
            0..=5 => "claude-opus-4-8",
            6..=8 => "claude-sonnet-4-6",
            _ => "claude-haiku-4-5-20251001",
        };
        let cwd = format!("/home/dev/proj-{}", rng.below(60));
        let mut s = Session {
            out: BufWriter::with_capacity(1 << 20, file),
            rng,
            pool,
            kind,
            model,
            cwd,
            ts_ms,
            parent: None,
            written: 0,
            target: u64::MAX,
            responses: Vec::new(),
            context: 12_000,
        };
        if s.kind.agent_id.is_none() {
            let line = json!({"type": "queue-operation", "operation": "enqueue", "timestamp": s.ts(), "sessionId": s.kind.session_id});
            s.line(&line);
        }
        let prompt = s.words(20, 2000);
        s.user(json!(prompt), None);
        s
    }

    fn finish(mut self) -> u64 {
        self.out.flush().unwrap();
        self.written
    }

    fn line(&mut self, v: &Value) {
        let mut bytes = serde_json::to_vec(v).unwrap();
        bytes.push(b'\n');
        self.out.write_all(&bytes).unwrap();
        self.written += bytes.len() as u64;
    }

    fn ts(&mut self) -> String {
        self.ts_ms += self.rng.range(200, 40_000) as i64;
        chrono::DateTime::from_timestamp_millis(self.ts_ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    /// The fields every line ends (2.1.x) or starts (older) with.
    fn common(&self) -> Vec<(&'static str, Value)> {
        let mut v = vec![
            ("userType", json!("external")),
            ("entrypoint", json!("cli")),
            ("cwd", json!(self.cwd)),
            ("sessionId", json!(self.kind.session_id)),
            ("version", json!(self.kind.version)),
            ("gitBranch", json!("main")),
        ];
        if self.kind.version.starts_with("2.1") {
            v.push(("slug", json!("quiet-river")));
        }
        v
    }

    /// A line with `head` fields, then `body`, in the key order of this session's version.
    fn record(
        &mut self,
        head: Vec<(&'static str, Value)>,
        body: Vec<(&'static str, Value)>,
    ) -> Value {
        let uuid = self.rng.uuid();
        let mut map = serde_json::Map::new();
        let old = !self.kind.version.starts_with("2.1");
        map.insert("parentUuid".into(), json!(self.parent));
        map.insert("isSidechain".into(), json!(self.kind.agent_id.is_some()));
        if let Some(agent) = &self.kind.agent_id {
            map.insert("agentId".into(), json!(agent));
        }
        if old {
            for (k, v) in self.common() {
                map.insert(k.into(), v);
            }
        }
        for (k, v) in head {
            map.insert(k.into(), v);
        }
        map.insert("uuid".into(), json!(uuid));
        let ts = self.ts();
        map.insert("timestamp".into(), json!(ts));
        for (k, v) in body {
            map.insert(k.into(), v);
        }
        if !old {
            for (k, v) in self.common() {
                map.insert(k.into(), v);
            }
        }
        self.parent = Some(uuid);
        Value::Object(map)
    }

    fn user(&mut self, content: Value, tool_use_result: Option<Value>) {
        let mut body = Vec::new();
        if let Some(r) = tool_use_result {
            body.push(("toolUseResult", r));
        }
        let head = vec![
            ("promptId", json!(self.rng.uuid())),
            ("type", json!("user")),
            ("message", json!({"role": "user", "content": content})),
        ];
        let line = self.record(head, body);
        self.line(&line);
    }

    fn assistant_line(
        &mut self,
        message_id: &str,
        request_id: &str,
        block: Value,
        stop_reason: Option<&str>,
        usage: &Value,
    ) -> Value {
        let message = json!({
            "id": message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [block], "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage, "stop_details": null,
        });
        let head = vec![
            ("message", message),
            ("requestId", json!(request_id)),
            ("type", json!("assistant")),
        ];
        self.record(head, Vec::new())
    }

    /// `len`, cut to the room left before the target size.
    fn fit(&self, len: usize) -> usize {
        // A turn holds several texts, and a tool result is written twice (content and
        // toolUseResult): each gets a third of the room.
        let room = (self.target.saturating_sub(self.written) / 3).max(16);
        len.min(usize::try_from(room).unwrap_or(usize::MAX))
    }

    /// About `lo..hi` bytes of text (log-uniform).
    fn words(&mut self, lo: u64, hi: u64) -> String {
        let len = self.rng.size(lo, hi);
        let len = self.fit(len);
        self.pool.slice(self.rng, len).to_owned()
    }

    /// Exactly-sized text, possibly larger than the pool's slices.
    fn long_text(&mut self, lo: u64, hi: u64) -> String {
        let len = self.rng.size(lo, hi);
        let len = self.fit(len);
        self.pool.text(self.rng, len)
    }

    /// One API response, one line per content block. Returns the tool it called, if any.
    fn response(&mut self) -> Option<&'static str> {
        let message_id = format!("msg_{}", self.rng.hex(24));
        let request_id = format!("req_{}", self.rng.hex(24));
        let mut blocks = Vec::new();
        if self.rng.chance(0.3) {
            let thinking = self.words(100, 4000);
            blocks.push(
                json!({"type": "thinking", "thinking": thinking, "signature": self.rng.hex(200)}),
            );
        }
        if self.rng.chance(0.7) {
            let text = self.words(20, 3000);
            blocks.push(json!({"type": "text", "text": text}));
        }
        let tool = if blocks.is_empty() || self.rng.chance(0.75) {
            let (name, input) = match self.rng.below(10) {
                0..=3 => (
                    "Bash",
                    json!({"command": self.words(20, 200), "description": "Run it"}),
                ),
                4..=5 => (
                    "Read",
                    json!({"file_path": format!("{}/src/lib.rs", self.cwd)}),
                ),
                6..=7 => (
                    "Edit",
                    json!({
                        "file_path": format!("{}/src/main.rs", self.cwd),
                        "old_string": self.words(50, 3000),
                        "new_string": self.words(50, 3000),
                    }),
                ),
                8 => (
                    "Write",
                    json!({
                        "file_path": format!("{}/src/new.rs", self.cwd),
                        "content": self.long_text(500, 30_000),
                    }),
                ),
                _ => (
                    "Agent",
                    json!({"description": "look around", "prompt": self.words(100, 800), "subagent_type": "Explore"}),
                ),
            };
            blocks.push(json!({"type": "tool_use", "id": format!("toolu_{}", self.rng.hex(24)), "name": name, "input": input}));
            Some(name)
        } else {
            None
        };

        let input = self.rng.range(1, 60);
        let creation = self.rng.size(1, 20_000) as u64;
        self.context += creation;
        let read = self.context;
        let output = self.rng.size(5, 4000) as u64;
        let speed = if self.rng.chance(0.02) {
            "fast"
        } else {
            "standard"
        };
        let streamed = self.rng.chance(0.3);
        let last = blocks.len() - 1;
        for (i, block) in blocks.into_iter().enumerate() {
            let (out, stop) = if streamed && i < last {
                (self.rng.range(1, 5), None)
            } else {
                (
                    output,
                    Some(if tool.is_some() {
                        "tool_use"
                    } else {
                        "end_turn"
                    }),
                )
            };
            let usage = usage_value(self.kind.version, input, out, creation, read, Some(speed));
            let line = self.assistant_line(&message_id, &request_id, block, stop, &usage);
            self.line(&line);
            if i == last {
                if self.responses.len() == 32 {
                    self.responses.remove(0);
                }
                self.responses.push(line);
            }
        }
        tool
    }

    /// A 429 as Claude Code writes it: a synthetic assistant line with zero usage.
    fn api_error(&mut self) {
        API_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let message = json!({
            "id": self.rng.uuid(), "model": "<synthetic>", "role": "assistant",
            "stop_reason": "stop_sequence", "type": "message",
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            "content": [{"type": "text", "text": "API Error: Request rejected (429) · rate limited"}],
        });
        let head = vec![
            ("type", json!("assistant")),
            ("message", message),
            ("requestId", json!(format!("req_{}", self.rng.hex(24)))),
            ("error", json!("rate_limit")),
            ("isApiErrorMessage", json!(true)),
            ("apiErrorStatus", json!(429)),
        ];
        let line = self.record(head, Vec::new());
        self.line(&line);
    }

    fn tool_result(&mut self, tool: &str) {
        let id = format!("toolu_{}", self.rng.hex(24));
        let text = match self.rng.below(100) {
            0 => self.long_text(200_000, 1_500_000),
            1..=10 => self.long_text(20_000, 200_000),
            _ => self.long_text(100, 20_000),
        };
        let result = match tool {
            "Read" => {
                json!({"type": "text", "file": {"filePath": format!("{}/src/lib.rs", self.cwd), "content": text, "numLines": 400, "startLine": 1, "totalLines": 400}})
            }
            "Agent" => json!({
                "status": "completed", "agentId": self.rng.hex(17), "content": [{"type": "text", "text": self.words(100, 800)}],
                "totalDurationMs": 71_000, "totalTokens": 1780, "totalToolUseCount": 4,
                "usage": {"input_tokens": 1200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 500, "output_tokens": 80},
            }),
            _ => json!({"stdout": text, "stderr": "", "interrupted": false, "isImage": false}),
        };
        self.user(
            json!([{"tool_use_id": id, "type": "tool_result", "content": text}]),
            Some(result),
        );
    }

    /// A user prompt, a response and its tool call's result, and the lines around them.
    fn turn(&mut self) {
        match self.rng.below(100) {
            0..=9 => {
                let prompt = self.words(10, 2000);
                self.user(json!(prompt), None);
            }
            10 => {
                let head = vec![
                    ("type", json!("attachment")),
                    (
                        "attachment",
                        json!({"type": "hook_additional_context", "content": [self.words(50, 500)]}),
                    ),
                ];
                let line = self.record(head, Vec::new());
                self.line(&line);
            }
            11 => self.api_error(),
            _ => {}
        }
        if let Some(tool) = self.response() {
            self.tool_result(tool);
        }
        if self.rng.chance(0.05) {
            let head = vec![
                ("type", json!("system")),
                ("subtype", json!("turn_duration")),
                ("durationMs", json!(self.rng.range(500, 90_000))),
            ];
            let line = self.record(head, Vec::new());
            self.line(&line);
        }
    }
}

/// A usage object as the given Claude Code version writes it.
fn usage_value(
    version: &str,
    input: u64,
    output: u64,
    creation: u64,
    read: u64,
    speed: Option<&str>,
) -> Value {
    if version.starts_with("1.") {
        return json!({
            "input_tokens": input, "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read, "output_tokens": output, "service_tier": "standard",
        });
    }
    let one_hour = creation / 3;
    json!({
        "input_tokens": input, "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read, "output_tokens": output,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": one_hour, "ephemeral_5m_input_tokens": creation - one_hour},
        "inference_geo": "", "iterations": [], "speed": speed,
    })
}
