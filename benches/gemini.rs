//! Gemini runner benchmark: `cargo bench --bench gemini`.
//!
//! 1. Stream parsing: 100 MB of stream-json shaped like Gemini CLI 0.61's (assistant deltas,
//!    tool calls and results), folded by `gemini::stream::Transcript` in process. Aim: 100 MB/s
//!    or more.
//! 2. Runner overhead: the fake `gemini` (tests/fakes/gemini) started directly, beside the same
//!    run through `gemini::runner::run` (process group, timeout supervision, stream folding), and
//!    through the whole `harness delegate` (store row, brief, detached worker, slot, waiting).
//!    Interleaved rounds; p50 and p99. Aim: a few milliseconds over Gemini's own time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_harness::gemini::runner::{self, Spec};
use agent_harness::gemini::setup::Mode;
use agent_harness::gemini::stream::Transcript;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    parse_throughput();
    runner_overhead();
}

fn parse_throughput() {
    let mut stream = String::new();
    let ts = "\"timestamp\":\"2026-11-21T10:36:01.187Z\"";
    stream.push_str(&format!(
        "{{\"type\":\"init\",{ts},\"session_id\":\"s\",\"model\":\"auto\"}}\n"
    ));
    let text = "Gemini wrote a fairly long sentence about the code base, with \\\"quotes\\\" and unicode é. ".repeat(8);
    let mut i = 0;
    while stream.len() < 100 * 1024 * 1024 {
        stream.push_str(&format!(
            "{{\"type\":\"message\",{ts},\"role\":\"assistant\",\"content\":\"{text}\",\"delta\":true}}\n"
        ));
        if i % 20 == 0 {
            stream.push_str(&format!(
                "{{\"type\":\"tool_use\",{ts},\"tool_name\":\"read_file\",\"tool_id\":\"read_file__{i}\",\"parameters\":{{\"file_path\":\"src/file{i}.rs\"}}}}\n\
                 {{\"type\":\"tool_result\",{ts},\"tool_id\":\"read_file__{i}\",\"status\":\"success\",\"output\":\"\"}}\n"
            ));
        }
        i += 1;
    }
    stream.push_str(&format!(
        "{{\"type\":\"result\",{ts},\"status\":\"success\",\"stats\":{{\"total_tokens\":1}}}}\n"
    ));
    let bytes = stream.as_bytes();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut t = Transcript::with_cap(256 * 1024);
        for line in bytes.split(|b| *b == b'\n') {
            t.push_line(line);
        }
        let took = started.elapsed();
        assert!(t.succeeded() && t.garbage_lines == 0);
        best = best.min(took);
    }
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "stream parsing: {mb:.0} MB in {:.0} ms (best of 5): {:.0} MB/s (aim: 100 MB/s or more)",
        best.as_secs_f64() * 1000.0,
        mb / best.as_secs_f64()
    );
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

fn runner_overhead() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fake = root.join("tests/fakes/gemini");
    let scratch = root.join(format!("target/bench-gemini-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let config = scratch.join("config.json");
    std::fs::write(
        &config,
        // The scratch folder is nobody's trusted project: trust it for the runs by config.
        format!(
            "{{\"gemini\": {{\"binary\": \"{}\", \"trust_workspace\": true}}}}",
            fake.display()
        ),
    )
    .unwrap();
    let db = scratch.join("harness.db");
    let rounds: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let spec = Spec {
        binary: fake.clone(),
        prompt: "summarize the README".into(),
        cwd: scratch.clone(),
        trusted: true,
        gemini_home: None,
        model: None,
        mode: Mode::ReadOnly,
        session_id: Some("bench-run".into()),
        policy: None,
        timeout: Duration::from_secs(30),
        text_cap: 256 * 1024,
    };
    let (mut direct, mut through_runner, mut through_delegate) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let out = Command::new(&fake)
            .args([
                "-p",
                "summarize the README",
                "-o",
                "stream-json",
                "--skip-trust",
            ])
            .args(["--approval-mode", "default", "--session-id", "bench-run"])
            .current_dir(&scratch)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        direct.push(started.elapsed());
        assert!(out.status.success());

        let started = Instant::now();
        let outcome = runner::run(&spec);
        through_runner.push(started.elapsed());
        assert!(outcome.succeeded(), "{:?}", outcome.error);

        let started = Instant::now();
        let out = Command::new(&harness)
            .args(["delegate", "--wait", "30", "summarize the README"])
            .env("HARNESS_DB", &db)
            .env("HARNESS_CONFIG", &config)
            .current_dir(&scratch)
            .output()
            .unwrap();
        through_delegate.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (r50, r99) = (
        percentile(&mut through_runner, 0.5),
        percentile(&mut through_runner, 0.99),
    );
    let (h50, h99) = (
        percentile(&mut through_delegate, 0.5),
        percentile(&mut through_delegate, 0.99),
    );
    println!("runner overhead over {rounds} interleaved rounds of the fake gemini (p50 / p99):");
    println!("  fake gemini started directly     {d50:7.2} ms / {d99:7.2} ms");
    println!(
        "  through gemini::runner::run      {r50:7.2} ms / {r99:7.2} ms   (+{:.2} ms at p50)",
        r50 - d50
    );
    println!(
        "  through harness delegate         {h50:7.2} ms / {h99:7.2} ms   (+{:.2} ms at p50)",
        h50 - d50
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
