//! `harness export otlp` against a strict mock collector (tests/otlp_collector.py: every request
//! parsed with protobuf's json_format against opentelemetry-proto): the span tree of a recorded
//! session, nothing sent twice, and every span there in the end after a collector that is down,
//! slow, answering 500 or 429 with Retry-After, or partially successful, and after the exporter
//! is killed mid-batch.
//!
//! The collector needs Python with `opentelemetry-proto` (installed by .ci/run into
//! ~/.cache/agent-harness/otlp-venv). Without it these tests say so and pass, except under
//! CI=true, where a missing package is a failure.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Env, fixture};

/// The Python that has opentelemetry-proto, if any.
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("AH_OTLP_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/agent-harness/otlp-venv/bin/python"));
    }
    candidates.push("python3".into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, google.protobuf.json_format"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

struct Collector {
    child: Child,
    port: u16,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    /// Starts the mock collector, or None (with a message) when Python lacks the packages and
    /// this is not CI.
    fn start() -> Option<Collector> {
        let Some(py) = python() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: no Python with opentelemetry-proto and protobuf (run .ci/run's install step)"
            );
            eprintln!(
                "SKIPPED: no Python with opentelemetry-proto and protobuf; install them with \
                 `python3 -m venv ~/.cache/agent-harness/otlp-venv && \
                 ~/.cache/agent-harness/otlp-venv/bin/pip install opentelemetry-proto protobuf`"
            );
            return None;
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otlp_collector.py");
        let mut child = Command::new(py)
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the mock collector");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the collector prints its port");
        Some(Collector { child, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn dump(&self) -> Value {
        let mut resp = ureq::get(format!("{}/dump", self.url())).call().unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn script(&self, actions: Value) {
        ureq::post(format!("{}/control", self.url()))
            .send(actions.to_string().as_bytes())
            .unwrap();
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn attr_str<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    attr(span, key)?.get("stringValue")?.as_str()
}

fn nanos(span: &Value, key: &str) -> u64 {
    span[key].as_str().unwrap().parse().unwrap()
}

fn export(env: &Env, collector: &str, extra: &[&str]) -> std::process::Output {
    env.cmd("harness")
        .args(["export", "otlp", "--endpoint", collector])
        .args(extra)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

/// A recorded session through the real hook binaries: SessionStart, a prompt, Bash that
/// succeeds, Read, Bash that fails, a write denied by another agent's lock, Stop.
fn record_session(env: &Env, sid: &str) {
    let send = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut v: Value =
            serde_json::from_slice(&fixture(&format!("claude-code-2.1.332/{name}.json"))).unwrap();
        v["session_id"] = json!(sid);
        edit(&mut v);
        let event = v["hook_event_name"].as_str().unwrap().to_owned();
        let out = env.hook(support::binary_for(&event), serde_json::to_vec(&v).unwrap());
        assert!(out.status.success(), "{name}: {out:?}");
    };
    let pause = || std::thread::sleep(Duration::from_millis(30));
    send("SessionStart-startup", &|_| {});
    send("UserPromptSubmit", &|_| {});
    send("PreToolUse-Bash", &|v| v["tool_use_id"] = json!("toolu_ok"));
    pause();
    send("PostToolUse-Bash", &|v| {
        v["tool_use_id"] = json!("toolu_ok")
    });
    send("PreToolUse-Read", &|v| {
        v["tool_use_id"] = json!("toolu_read")
    });
    pause();
    send("PostToolUse-Read", &|v| {
        v["tool_use_id"] = json!("toolu_read")
    });
    send("PreToolUse-Bash", &|v| {
        v["tool_use_id"] = json!("toolu_fail")
    });
    pause();
    send("PostToolUseFailure-Bash", &|v| {
        v["tool_use_id"] = json!("toolu_fail")
    });
    pause();
    send("Stop", &|_| {});
}

/// Records a Claude event of `session` directly in the store; `tool` is (name, tool_use_id).
fn add_event(
    db: &rusqlite::Connection,
    session: &str,
    ts_ms: i64,
    event: &str,
    tool: Option<(&str, &str)>,
) {
    db.execute(
        "INSERT INTO events (ts_ms, session_id, agent, event, tool_name, tool_use_id, payload) \
         VALUES (?1, ?2, 'claude', ?3, ?4, ?5, '{}')",
        rusqlite::params![ts_ms, session, event, tool.map(|t| t.0), tool.map(|t| t.1)],
    )
    .unwrap();
}

#[test]
fn a_recorded_session_is_one_trace_of_a_turn_and_its_tool_calls() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-tree");
    record_session(&env, "sess-tree-1");
    let out = export(&env, &collector.url(), &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Exported 4 spans"), "{stdout}");
    let dump = collector.dump();
    assert_eq!(dump["errors"], json!([]), "the collector refused a request");
    let spans = dump["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let turn = spans
        .iter()
        .find(|s| attr_str(s, "gen_ai.operation.name") == Some("invoke_agent"))
        .expect("a turn span");
    assert_eq!(turn["parentSpanId"], Value::Null);
    assert_eq!(turn["name"], "invoke_agent claude-code");
    assert_eq!(attr_str(turn, "gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(
        attr_str(turn, "gen_ai.conversation.id"),
        Some("sess-tree-1")
    );
    assert_eq!(attr_str(turn, "harness.turn.end"), Some("stop"));
    assert_eq!(
        attr(turn, "harness.prompt"),
        None,
        "prompts stay home by default"
    );
    let tools: Vec<&Value> = spans
        .iter()
        .filter(|s| attr_str(s, "gen_ai.operation.name") == Some("execute_tool"))
        .collect();
    assert_eq!(tools.len(), 3);
    let by_call: HashMap<&str, &Value> = tools
        .iter()
        .map(|s| (attr_str(s, "gen_ai.tool.call.id").unwrap(), *s))
        .collect();
    for (call, tool, code) in [
        ("toolu_ok", "Bash", "STATUS_CODE_OK"),
        ("toolu_read", "Read", "STATUS_CODE_OK"),
        ("toolu_fail", "Bash", "STATUS_CODE_ERROR"),
    ] {
        let s = by_call[call];
        assert_eq!(s["traceId"], turn["traceId"], "one trace per session");
        assert_eq!(
            s["parentSpanId"], turn["spanId"],
            "{call} is a child of the turn"
        );
        assert_eq!(attr_str(s, "gen_ai.tool.name"), Some(tool));
        assert_eq!(s["name"], format!("execute_tool {tool}"));
        assert_eq!(
            s["status"]["code"].as_str().unwrap_or("STATUS_CODE_UNSET"),
            code,
            "{call}"
        );
        let (start, end) = (nanos(s, "startTimeUnixNano"), nanos(s, "endTimeUnixNano"));
        assert!(
            end - start >= 25_000_000,
            "{call} lasted {} ns",
            end - start
        );
        assert!(start >= nanos(turn, "startTimeUnixNano") && end <= nanos(turn, "endTimeUnixNano"));
        assert!(
            attr(s, "gen_ai.tool.call.arguments").is_none(),
            "tool inputs stay home by default"
        );
    }
    assert_eq!(
        attr_str(by_call["toolu_fail"], "error.type"),
        Some("tool_error")
    );
    assert_eq!(
        dump["requests"]["metrics"], 1,
        "the metrics snapshot parsed too"
    );

    // Nothing is sent twice.
    let again = export(&env, &collector.url(), &[]);
    assert!(again.status.success(), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("Exported 0 spans"));
    assert_eq!(collector.dump()["duplicates"], 0);

    // The same ids from another store holding the same records (a resend after a crash).
    let dry = env
        .cmd("harness")
        .args([
            "export",
            "otlp",
            "--dry-run",
            "--signal",
            "traces",
            "--reset",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let ids: HashSet<String> = line["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["spanId"].as_str().unwrap().to_owned())
        .collect();
    let sent: HashSet<String> = spans
        .iter()
        .map(|s| s["spanId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, sent,
        "a dry run after --reset would send the very same span ids"
    );
}

/// A store written directly: `sessions` sessions of `turns` turns of `tools` tool calls each.
/// Returns the number of spans it holds.
fn synthetic_store(env: &Env, sessions: usize, turns: usize, tools: usize) -> usize {
    // The CLI creates the store.
    assert!(
        env.cmd("harness")
            .args(["sessions"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut db = env.db();
    let tx = db.transaction().unwrap();
    let mut ts = 1_700_000_000_000i64;
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO events (ts_ms, session_id, agent, event, tool_name, tool_use_id, payload) \
                 VALUES (?1, ?2, 'claude', ?3, ?4, ?5, '{}')",
            )
            .unwrap();
        for s in 0..sessions {
            let sid = format!("syn-{s}");
            for t in 0..turns {
                ins.execute(rusqlite::params![
                    ts,
                    sid,
                    "UserPromptSubmit",
                    None::<String>,
                    None::<String>
                ])
                .unwrap();
                for k in 0..tools {
                    let id = format!("tu-{s}-{t}-{k}");
                    ts += 5;
                    ins.execute(rusqlite::params![ts, sid, "PreToolUse", "Bash", id])
                        .unwrap();
                    ts += 20;
                    ins.execute(rusqlite::params![ts, sid, "PostToolUse", "Bash", id])
                        .unwrap();
                }
                ts += 5;
                ins.execute(rusqlite::params![
                    ts,
                    sid,
                    "Stop",
                    None::<String>,
                    None::<String>
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    sessions * turns * (tools + 1)
}

fn small_batches(env: &Env, extra: &str) {
    let retry = if extra.is_empty() {
        r#", "retry_secs": 8"#
    } else {
        extra
    };
    env.config(&format!(
        r#"{{"export": {{"otlp": {{"batch_spans": 50, "timeout_secs": 1 {retry}}}}}}}"#
    ));
}

fn span_counts(dump: &Value) -> usize {
    dump["spans"].as_array().unwrap().len()
}

#[test]
fn an_open_turn_waits_and_is_sent_once_it_closes() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-open");
    synthetic_store(&env, 1, 1, 0);
    let db = env.db();
    let add = |ts, event, tool: Option<&str>| {
        add_event(&db, "open-1", ts, event, tool.map(|id| ("Bash", id)))
    };
    let t0 = 1_800_000_000_000i64;
    add(t0, "UserPromptSubmit", None);
    add(t0 + 10, "PreToolUse", Some("a"));
    add(t0 + 50, "PostToolUse", Some("a"));
    add(t0 + 60, "PreToolUse", Some("b"));
    let out = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        span_counts(&collector.dump()),
        2,
        "the closed turn and tool a; b and its turn wait"
    );
    add(t0 + 90, "PostToolUse", Some("b"));
    add(t0 + 100, "Stop", None);
    let out = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(out.status.success(), "{out:?}");
    let dump = collector.dump();
    assert_eq!(span_counts(&dump), 4);
    assert_eq!(
        dump["duplicates"], 0,
        "tool a was not sent again after the replay"
    );
    let b = dump["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| attr_str(s, "gen_ai.tool.call.id") == Some("b"))
        .unwrap()
        .clone();
    assert_eq!(
        nanos(&b, "endTimeUnixNano") - nanos(&b, "startTimeUnixNano"),
        30_000_000
    );
}

#[test]
fn every_span_arrives_after_faults_and_a_killed_exporter() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-faults");
    let total = synthetic_store(&env, 6, 10, 4); // 300 spans, 6 batches of 50
    small_batches(&env, "");

    // Collector down: the export fails at once, clearly, with no summary, the cursor stays.
    let down = refused_url();
    let began = Instant::now();
    let out = export(&env, &down, &["--signal", "traces"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no OTLP collector at {down} (connection refused)"))
            && err.contains("--endpoint URL")
            && !err.contains("trying again"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Exported"));
    assert!(began.elapsed() < Duration::from_secs(10));
    let cursor: i64 = env.count("SELECT count(*) FROM export_cursors");
    assert_eq!(cursor, 0, "no cursor moved while the collector was down");

    // 500, 429 with Retry-After, slow (past the 1 s timeout), a partial success: all retried or
    // accepted, in order.
    small_batches(&env, r#", "retry_secs": 30"#);
    collector.script(json!([
        {"status": 500},
        {"status": 429, "retry_after": "1"},
        {"delay": 2},
        {"status": 503},
        {"partial": 3},
    ]));
    let out = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rejected 3 items"), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 500") && err.contains("HTTP 429") && err.contains("in 1.0 s"),
        "{err}"
    );
    let dump = collector.dump();
    assert_eq!(dump["errors"], json!([]));
    assert_eq!(span_counts(&dump), total, "every span arrived");
    // The slow request timed out on our side but the collector kept it: that one batch may be
    // there twice; nothing else is.
    assert!(
        dump["duplicates"].as_u64().unwrap() <= 50,
        "{}",
        dump["duplicates"]
    );
    let dups_before = dump["duplicates"].as_u64().unwrap();

    // More records, then the exporter killed while the collector sits on its first request.
    let env2_total = {
        let db = env.db();
        let mut ts = 1_900_000_000_000i64;
        for t in 0..20 {
            add_event(&db, "late", ts, "UserPromptSubmit", None);
            for k in 0..4 {
                let id = format!("late-{t}-{k}");
                ts += 5;
                add_event(&db, "late", ts, "PreToolUse", Some(("Read", &id)));
                ts += 5;
                add_event(&db, "late", ts, "PostToolUse", Some(("Read", &id)));
            }
            ts += 5;
            add_event(&db, "late", ts, "Stop", None);
        }
        100
    };
    env.config(r#"{"export": {"otlp": {"batch_spans": 50, "timeout_secs": 30, "retry_secs": 8}}}"#);
    collector.script(json!([{"delay": 3}]));
    let started = collector.dump()["started"].as_u64().unwrap();
    let mut child = {
        let mut c = std::process::Command::new(support::bin("harness"));
        c.env_clear();
        c.env("HOME", &env.home)
            .env("HARNESS_DB", &env.db)
            .env(
                "HARNESS_CONFIG",
                env.home.join(".config/agent-harness/config.json"),
            )
            .args([
                "export",
                "otlp",
                "--signal",
                "traces",
                "--endpoint",
                &collector.url(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while collector.dump()["started"].as_u64().unwrap() == started {
        assert!(Instant::now() < deadline, "the exporter never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_secs(3)); // the killed request's delayed copy lands
    let dump = collector.dump();
    assert_eq!(dump["errors"], json!([]));
    assert_eq!(
        span_counts(&dump),
        total + env2_total,
        "none missing after the kill"
    );
    let dups = dump["duplicates"].as_u64().unwrap() - dups_before;
    assert!(dups <= 50, "at most the killed batch twice, got {dups}");
}

#[test]
fn metrics_and_logs_parse_strictly() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-metrics");
    synthetic_store(&env, 1, 2, 1);
    let db = env.db();
    db.execute_batch(
        "INSERT INTO quota_figures (provider, window, source, used_pct, resets_at_ms, official, observed_ms) \
           VALUES ('claude', 'five_hour', 'statusline', 42.5, 1800000000000, 1, 1700000000000); \
         INSERT INTO usage VALUES (1700000000001 / 3600000, 'm1', 'r1', 1700000000001, 'syn-0', 'claude-sonnet-4-5', 100, 20, 5, 1000, 0); \
         INSERT INTO lock_log (ts_ms, path, session_id, action) VALUES (1700000000002, '/p', 'syn-0', 'deny');",
    )
    .unwrap();
    std::fs::write(
        env.log(),
        "2026-12-01T10:00:00.000Z harness-pre-tool-use[12]: store locked\n",
    )
    .unwrap();
    env.config(r#"{"export": {"otlp": {"log_events": true}}}"#);
    let out = export(&env, &collector.url(), &[]);
    assert!(out.status.success(), "{out:?}");
    let dump = collector.dump();
    assert_eq!(dump["errors"], json!([]));
    assert_eq!(dump["requests"]["metrics"], 1);
    let metrics = dump["metrics"][0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = metrics
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for want in [
        "harness.quota.used",
        "harness.tokens",
        "harness.cost",
        "harness.lock.denials",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let quota = &metrics[names
        .iter()
        .position(|n| *n == "harness.quota.used")
        .unwrap()];
    assert_eq!(quota["gauge"]["dataPoints"][0]["asDouble"], 42.5);
    let logs = dump["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| {
        l["body"]["stringValue"]
            .as_str()
            .unwrap()
            .contains("store locked")
    }));
    assert_eq!(logs.len(), 1 + 2 * 4, "the log line and every event");
    // Nothing twice on the next run: no new log records.
    let out = export(&env, &collector.url(), &["--signal", "logs"]);
    assert!(out.status.success());
    assert_eq!(
        collector.dump()["logs"].as_array().unwrap().len(),
        logs.len()
    );
}

/// A local URL where nothing listens (connection refused).
fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// No Python needed: nothing listens at the endpoint. A one-shot export says so in one line at
/// once (it used to retry for minutes, after printing "Exported 0 spans"); `--follow` keeps
/// trying, since there it means a collector restarting.
#[test]
fn no_collector_fails_a_one_shot_export_at_once_but_follow_keeps_trying() {
    let env = Env::new("otlp-nocollector");
    synthetic_store(&env, 1, 1, 1);
    let down = refused_url();
    let began = Instant::now();
    let out = export(&env, &down, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "harness: no OTLP collector at {down} (connection refused): start one, pass \
             --endpoint URL, or set OTEL_EXPORTER_OTLP_ENDPOINT"
        )),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(began.elapsed() < Duration::from_secs(10));
    assert_eq!(env.count("SELECT count(*) FROM export_cursors"), 0);

    let mut child = std::process::Command::new(support::bin("harness"))
        .env_clear()
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .args(["export", "otlp", "--follow", "--endpoint", &down])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running, "{first}");
    assert!(first.contains("trying again in"), "{first}");
}

#[test]
fn follow_sends_each_turn_once_as_it_closes_and_one_exporter_runs_at_a_time() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-follow");
    synthetic_store(&env, 1, 1, 1);
    env.config(r#"{"export": {"otlp": {"interval_secs": 1}}}"#);
    let mut child = std::process::Command::new(support::bin("harness"))
        .env_clear()
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env(
            "HARNESS_CONFIG",
            env.home.join(".config/agent-harness/config.json"),
        )
        .args([
            "export",
            "otlp",
            "--follow",
            "--signal",
            "traces",
            "--endpoint",
            &collector.url(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while span_counts(&collector.dump()) < n {
            assert!(
                Instant::now() < deadline,
                "only {} spans arrived",
                span_counts(&collector.dump())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(2);
    // A second exporter on the same store is refused with a clear message.
    let second = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains("another `harness export otlp` is running")
    );
    let db = env.db();
    let add = |ts, event, tool: Option<&str>| {
        add_event(&db, "follow-1", ts, event, tool.map(|id| ("Grep", id)))
    };
    let t0 = 1_800_000_000_000i64;
    add(t0, "UserPromptSubmit", None);
    add(t0 + 10, "PreToolUse", Some("f1"));
    add(t0 + 20, "PostToolUse", Some("f1"));
    wait_for(3);
    std::thread::sleep(Duration::from_millis(1500)); // a round with the turn still open
    add(t0 + 30, "Stop", None);
    wait_for(4);
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let dump = collector.dump();
    assert_eq!(span_counts(&dump), 4);
    assert_eq!(dump["duplicates"], 0, "nothing sent twice across rounds");
    assert_eq!(dump["errors"], json!([]));
}

#[test]
fn runs_reviews_denials_and_privacy_settings_reach_the_collector_as_asked() {
    let Some(collector) = Collector::start() else {
        return;
    };
    let env = Env::new("otlp-runs");
    assert!(
        env.cmd("harness")
            .args(["sessions"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let db = env.db();
    let t0 = 1_700_000_000_000i64; // runs are sent once settled: in the past
    let secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
    let prompt = json!({"prompt": format!("deploy with key {secret}")}).to_string();
    let ins = |ts: i64, event: &str, tool: Option<&str>, decision: Option<&str>, payload: &str| {
        db.execute(
            "INSERT INTO events (ts_ms, session_id, agent, event, tool_name, tool_use_id, file_path, decision, payload) \
             VALUES (?1, 'priv-1', 'claude', ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![ts, event, tool.map(|_| "Edit"), tool, tool.map(|_| "/home/dev/secret-project/a.rs"), decision, payload],
        )
        .unwrap();
    };
    db.execute(
        "INSERT INTO sessions (session_id, agent, first_seen_ms, project_root) VALUES ('priv-1', 'claude', ?1, '/home/dev/secret-project')",
        [t0],
    )
    .unwrap();
    ins(t0, "UserPromptSubmit", None, None, &prompt);
    ins(
        t0 + 10,
        "PreToolUse",
        Some("e1"),
        Some("deny: agent-harness: /home/dev/secret-project/a.rs is held by claude session other"),
        "{}",
    );
    db.execute(
        "INSERT INTO runs (run_id, requester, task, prompt, mode, status, created_ms, started_ms, finished_ms, input_tokens, output_tokens) \
         VALUES ('run-1', 'priv-1', 'read the repo', 'read the repo', 'read-only', 'success', ?1, ?2, ?3, 1200, 300)",
        rusqlite::params![t0 + 20, t0 + 25, t0 + 500],
    )
    .unwrap();
    db.execute(
        "INSERT INTO reviews (session_id, thread, created_ms, finished_ms, status, trigger, findings) VALUES ('priv-1', 1, ?1, ?2, 'reject', 'command', '[{}, {}]')",
        rusqlite::params![t0 + 600, t0 + 700],
    )
    .unwrap();
    ins(t0 + 800, "Stop", None, None, "{}");
    // The run's own Gemini session, as Gemini CLI's hooks record it.
    for (ts, event) in [(t0 + 30, "BeforeAgent"), (t0 + 490, "AfterAgent")] {
        db.execute(
            "INSERT INTO events (ts_ms, session_id, agent, event, payload) VALUES (?1, 'run-1', 'gemini', ?2, '{}')",
            rusqlite::params![ts, event],
        )
        .unwrap();
    }
    env.config(r#"{"export": {"otlp": {"include_prompts": true, "hash_ids": true, "hash_paths": true, "hash_salt": "team"}}}"#);
    let out = export(&env, &collector.url(), &["--signal", "traces"]);
    assert!(out.status.success(), "{out:?}");
    let dump = collector.dump();
    assert_eq!(dump["errors"], json!([]));
    let spans = dump["spans"].as_array().unwrap();
    assert_eq!(
        spans.len(),
        4,
        "turn, denied tool, run, the run's own session: {spans:#?}"
    );
    let text = serde_json::to_string(spans).unwrap();
    assert!(
        !text.contains("priv-1") && !text.contains("secret-project") && !text.contains("run-1"),
        "ids and paths hashed: {text}"
    );
    assert!(
        !text.contains("abcdefghijklmnop"),
        "the prompt was redacted on its way out"
    );
    let turn = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent claude-code")
        .unwrap();
    assert!(
        attr_str(turn, "harness.prompt")
            .unwrap()
            .starts_with("deploy with key")
    );
    let events: Vec<&str> = turn["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["harness.lock.denied", "harness.review"]);
    let review = &turn["events"][1];
    assert_eq!(attr_str(review, "harness.review.verdict"), Some("reject"));
    let denied = spans
        .iter()
        .find(|s| s["name"] == "execute_tool Edit")
        .unwrap();
    assert_eq!(attr_str(denied, "harness.tool.outcome"), Some("denied"));
    assert_eq!(denied["parentSpanId"], turn["spanId"]);
    let gemini_turn = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent gemini-cli" && s["kind"] != "SPAN_KIND_CLIENT")
        .unwrap();
    assert_eq!(
        attr_str(gemini_turn, "gen_ai.provider.name"),
        Some("gcp.gemini")
    );
    let run = spans
        .iter()
        .find(|s| s["kind"] == "SPAN_KIND_CLIENT")
        .unwrap();
    assert_eq!(attr_str(run, "gen_ai.provider.name"), Some("gcp.gemini"));
    assert_eq!(
        run["traceId"], turn["traceId"],
        "the run is in its requester's trace"
    );
    assert_eq!(
        run["parentSpanId"], turn["spanId"],
        "under the turn that asked for it"
    );
    assert_eq!(run["links"][0]["spanId"], turn["spanId"]);
    assert_eq!(
        run["links"][1]["spanId"], gemini_turn["spanId"],
        "linked to the run's own trace"
    );
    assert_eq!(run["links"][1]["traceId"], gemini_turn["traceId"]);
    assert_eq!(
        attr(run, "gen_ai.usage.input_tokens").unwrap()["intValue"],
        "1200"
    );
    assert_eq!(
        nanos(run, "endTimeUnixNano") - nanos(run, "startTimeUnixNano"),
        475_000_000
    );
}
