//! `harness dashboard` in a real headless Chromium: every panel filled from a seeded store, a hook
//! call made during the test appearing live, the two person actions, and the token guarding all
//! of it. `harness usage` totals against hand-computed sums on fixture transcripts.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{self, Browser, request};
use support::{Env, fixture};

const CLAUDE_SESSION: &str = "2f742b1f-2b7f-4230-a9af-5d276922e5ae";
const PROMPT_WITH_MARKUP: &str = "<img src=x id=injected onerror=alert(1)> refactor the parser";
const HELD: &str = "SELECT count(*) FROM claims WHERE path = '/home/dev/project/held.rs'";
const PLAN: &str = "1. Read the parser\n2. Split the tokenizer out";

fn payload(rel: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// A store with something for every panel: Claude and Gemini sessions with events (one prompt
/// carrying markup), an ExitPlanMode plan, a routing decision, official and estimated quota, an
/// exhaustion, transcript usage, a Gemini run, an open REJECT review, a held file, a logged problem.
fn seed(env: &Env) {
    let c = "claude-code-2.1.332";
    for (bin, rel) in [
        (
            "harness-session-start",
            format!("{c}/SessionStart-startup.json"),
        ),
        ("harness-pre-tool-use", format!("{c}/PreToolUse-Read.json")),
        (
            "harness-post-tool-use",
            format!("{c}/PostToolUse-Edit.json"),
        ),
        (
            "harness-session-start",
            "gemini-cli-0.61.0/SessionStart-startup.json".into(),
        ),
        (
            "harness-pre-tool-use",
            "gemini-cli-0.61.0/BeforeTool-run_shell_command.json".into(),
        ),
    ] {
        let out = env.hook(bin, fixture(&rel));
        assert!(out.status.success(), "{bin} {rel}");
    }
    let prompt = payload(&format!("{c}/UserPromptSubmit.json"), |v| {
        v["prompt"] = json!(PROMPT_WITH_MARKUP)
    });
    env.hook("harness-user-prompt-submit", prompt);
    let plan = payload(&format!("{c}/PostToolUse-Edit.json"), |v| {
        v["tool_name"] = json!("ExitPlanMode");
        v["tool_input"] = json!({ "plan": PLAN });
        v["tool_use_id"] = json!("toolu_plan_1");
    });
    env.hook("harness-post-tool-use", plan);

    let now = agent_harness::time::now_ms();
    let db = env.db();
    db.execute_batch(&format!(
        "INSERT INTO routes (session_id, decided_ms, task, task_type, complexity, score, bar, \
           selected, reason, factors, outcome) VALUES ('{CLAUDE_SESSION}', {now}, \
           'summarise the whole repository', 'summarise', 'large', 0.81, 0.6, 'gemini', \
           'broad reading', '{{\"gemini\": {{\"context\": 0.9}}, \"claude\": {{\"quota\": 0.4}}}}', \
           'delegated');
         INSERT INTO quota_figures (provider, window, source, used_pct, resets_at_ms, official, \
           observed_ms) VALUES ('claude', 'five_hour', 'statusline', 42.0, {reset}, 1, {now});
         INSERT INTO exhaustion (provider, since_ms, until_ms, until_from, reason) VALUES \
           ('gemini', {now}, {reset}, 'message', 'quota exceeded for gemini-2.5-pro');
         INSERT INTO usage (hour, message_id, request_id, ts_ms, session_id, model, \
           input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, sidechain) \
           VALUES ({now} / 3600000, 'msg_1', 'req_1', {now}, '{CLAUDE_SESSION}', \
           'claude-sonnet-4-5', 1000000, 0, 0, 0, 0);
         INSERT INTO runs (run_id, requester, task, prompt, mode, status, created_ms, requests, \
           input_tokens, output_tokens, total_tokens) VALUES ('run-gem-1', '{CLAUDE_SESSION}', \
           'summarise', 'summarise', 'read-only', 'success', {now}, 3, 2000, 500, 2500);
         INSERT INTO reviews (session_id, thread, created_ms, finished_ms, status, trigger, \
           summary, findings, blocks) VALUES ('{CLAUDE_SESSION}', 1, {now}, {now}, 'reject', \
           'command', 'the tokenizer is untested', \
           '[{{\"file\": \"src/parse.rs\", \"line\": 3, \"severity\": \"major\", \
              \"problem\": \"no test for empty input\", \"fix\": \"add one\"}}]', 1);
         INSERT INTO claims (path, session_id, agent, tool_name, claimed_ms, touched_ms, \
           expires_ms) VALUES ('/home/dev/project/held.rs', '{CLAUDE_SESSION}', 'claude', 'Edit', \
           {now}, {now}, {expires});",
        reset = now + 3_600_000,
        expires = now + 600_000,
    ))
    .unwrap();
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    std::fs::write(
        env.log(),
        format!("{stamp} harness-stop[7]: disk full while recording\n"),
    )
    .unwrap();
}

/// A running `harness dashboard --port 0`, stopped when dropped.
struct Dashboard {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
    port: u16,
    token: String,
    url: String,
}

impl Dashboard {
    fn start(env: &Env) -> Dashboard {
        let mut cmd = Command::new(support::bin("harness"));
        cmd.env_clear();
        env.apply_std(&mut cmd);
        let mut child = cmd
            .args(["dashboard", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_owned();
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let token = url.rsplit("token=").next().unwrap().to_owned();
        Dashboard {
            child,
            _stdout: stdout,
            port,
            token,
            url,
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(browser: &Browser, selector: &str) -> i64 {
    browser
        .eval(
            "return document.querySelectorAll(arguments[0]).length",
            json!([selector]),
        )
        .as_i64()
        .unwrap()
}

fn text(browser: &Browser, selector: &str) -> String {
    browser
        .eval(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
            json!([selector]),
        )
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_page_shows_every_panel_and_follows_a_live_hook() {
    if !browser::available() {
        return;
    }
    let env = Env::new("dashboard-page");
    seed(&env);
    let dash = Dashboard::start(&env);
    let browser = Browser::start();
    browser.goto(&dash.url);
    browser.wait_for(
        "the page loads its snapshot",
        Duration::from_secs(10),
        "return document.body.dataset.loaded === '1' && \
         document.getElementById('live').textContent === 'live'",
    );

    // Activity: both agents' sessions with their health; the prompt's markup is text, not markup.
    assert!(count(&browser, "#sessions tbody tr") >= 2);
    let sessions = text(&browser, "#sessions tbody");
    assert!(
        sessions.contains("claude") && sessions.contains("gemini"),
        "{sessions}"
    );
    assert!(sessions.contains("live"), "{sessions}");
    let feed = text(&browser, "#feed tbody");
    assert!(feed.contains(PROMPT_WITH_MARKUP), "{feed}");
    assert_eq!(
        count(&browser, "#injected"),
        0,
        "recorded markup was parsed"
    );
    assert_eq!(count(&browser, "#feed img"), 0);
    // Routing, rate limits, costs, reviews, plans, locks, problems.
    let routes = text(&browser, "#routes tbody");
    assert!(
        routes.contains("summarise the whole repository") && routes.contains("0.81 / 0.60"),
        "{routes}"
    );
    assert!(routes.contains("context"), "factors shown: {routes}");
    assert!(count(&browser, "#gauges meter") >= 1);
    let gauges = text(&browser, "#gauges");
    assert!(
        gauges.contains("5h 42% official") && gauges.contains("resets in"),
        "{gauges}"
    );
    assert!(gauges.contains("quota exceeded"), "{gauges}");
    let costs = text(&browser, "#cost-provider tbody");
    // A million input tokens on Sonnet cost $3.00; the Gemini run is beside it.
    assert!(
        costs.contains("claude") && costs.contains("$3.00"),
        "{costs}"
    );
    assert!(costs.contains("gemini"), "{costs}");
    assert!(text(&browser, "#gemini-runs tbody").contains("run-gem-"));
    let reviews = text(&browser, "#reviews tbody");
    assert!(
        reviews.contains("reject") && reviews.contains("no test for empty input"),
        "{reviews}"
    );
    assert!(text(&browser, "#plans").contains("Split the tokenizer out"));
    assert!(text(&browser, "#locks tbody").contains("/home/dev/project/held.rs"));
    assert!(text(&browser, "#problems").contains("disk full while recording"));

    let shot = browser.screenshot(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard/dashboard.png"),
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // A hook run now shows up in the feed within 2 s.
    let marker = "echo live-marker-4711";
    let live = payload("claude-code-2.1.332/PreToolUse-Bash.json", |v| {
        v["tool_input"]["command"] = json!(marker);
        v["tool_use_id"] = json!("toolu_live_1");
    });
    let began = Instant::now();
    assert!(env.hook("harness-pre-tool-use", live).status.success());
    browser.wait_for(
        "the live hook call in the Activity panel",
        Duration::from_secs(2),
        &format!("return document.querySelector('#feed tbody').textContent.includes('{marker}')"),
    );
    eprintln!(
        "live event shown {:?} after the hook started",
        began.elapsed()
    );

    // The filters narrow the feed.
    browser.eval(
        "const f = document.getElementById('f-agent'); f.value = 'gemini'; \
         f.dispatchEvent(new Event('input'));",
        json!([]),
    );
    assert!(!text(&browser, "#feed tbody").contains(marker));
    assert!(count(&browser, "#feed tbody tr") >= 1);

    // The two person actions, through the page's buttons.
    browser.eval(
        "document.querySelector('#reviews button.waive').click()",
        json!([]),
    );
    browser.wait_for(
        "the review shows as waived",
        Duration::from_secs(5),
        "return document.querySelector('#reviews tbody').textContent.includes('waived')",
    );
    assert_eq!(
        env.count("SELECT count(*) FROM reviews WHERE status = 'waived'"),
        1
    );
    browser.eval(
        "[...document.querySelectorAll('#locks button.release')] \
         .find((b) => b.dataset.path === '/home/dev/project/held.rs').click()",
        json!([]),
    );
    browser.wait_for(
        "the lock is gone from the page",
        Duration::from_secs(5),
        "return !document.querySelector('#locks tbody').textContent.includes('held.rs')",
    );
    assert_eq!(env.count(HELD), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM lock_log WHERE session_id = 'harness dashboard'"),
        1
    );
}

#[test]
fn every_request_needs_the_token_and_actions_need_it_in_a_header_from_this_origin() {
    let env = Env::new("dashboard-token");
    seed(&env);
    let dash = Dashboard::start(&env);
    let (p, tok) = (dash.port, dash.token.as_str());
    let with_token = format!("/?token={tok}");

    for target in [
        "/",
        "/app.js",
        "/api/snapshot",
        "/api/stream",
        "/?token=nope",
    ] {
        let r = request(p, "GET", target, &[], b"");
        assert_eq!(r.status, 401, "GET {target}: {}", r.text());
    }
    let page = request(p, "GET", &with_token, &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(page.text().contains("<section id=\"activity\""));
    // Another Host (DNS rebinding) is refused even with the token.
    let rebound = request(p, "GET", &with_token, &[("Host", "evil.example:80")], b"");
    assert_eq!(rebound.status, 403);

    let snap = request(p, "GET", "/api/snapshot", &[("X-Harness-Token", tok)], b"");
    assert_eq!(snap.status, 200);
    let v = snap.json();
    assert!(
        v["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["path"] == "/home/dev/project/held.rs")
    );
    assert!(v["last_event_id"].as_i64().unwrap() >= 7);

    let body = br#"{"path": "/home/dev/project/held.rs"}"#;
    let json_type = ("Content-Type", "application/json");
    let release = "/api/locks/release";
    let query_only = request(
        p,
        "POST",
        &format!("{release}?token={tok}"),
        &[json_type],
        body,
    );
    assert_eq!(query_only.status, 403, "{}", query_only.text());
    let cross_site = request(
        p,
        "POST",
        release,
        &[
            json_type,
            ("X-Harness-Token", tok),
            ("Origin", "http://evil.example"),
        ],
        body,
    );
    assert_eq!(cross_site.status, 403);
    let not_json = request(p, "POST", release, &[("X-Harness-Token", tok)], body);
    assert_eq!(not_json.status, 415);
    // A page showing an older holder does not release the claim someone holds now.
    let stale = request(
        p,
        "POST",
        release,
        &[json_type, ("X-Harness-Token", tok)],
        br#"{"path": "/home/dev/project/held.rs", "session_id": "another-session"}"#,
    );
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert!(stale.text().contains("reload"), "{}", stale.text());
    assert_eq!(env.count(HELD), 1, "nothing released yet");
    let ok = request(
        p,
        "POST",
        release,
        &[json_type, ("X-Harness-Token", tok)],
        body,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(env.count(HELD), 0);
    let again = request(
        p,
        "POST",
        release,
        &[json_type, ("X-Harness-Token", tok)],
        body,
    );
    assert_eq!(again.status, 409);
    let waive = request(
        p,
        "POST",
        "/api/reviews/waive",
        &[json_type, ("X-Harness-Token", tok)],
        format!(r#"{{"session_id": "{CLAUDE_SESSION}", "reason": "looked at it"}}"#).as_bytes(),
    );
    assert_eq!(waive.status, 200, "{}", waive.text());
    assert_eq!(
        env.count("SELECT count(*) FROM reviews WHERE waive_reason = 'looked at it'"),
        1
    );

    // A second server on the same port: one clear line naming the port and the fix.
    let out = env
        .cmd("harness")
        .args(["dashboard", "--port", &p.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = support::stderr(&out);
    assert!(
        err.contains(&format!("port {p}")) && err.contains("in use") && err.contains("--port"),
        "{err}"
    );
}

/// Reads a live stream until `want` batches of events have come, returning their ids and events.
fn stream_batches(port: u16, token: &str, last_event_id: Option<i64>, want: usize) -> Vec<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /api/stream?token={token}&after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{resume}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    let mut batches = Vec::new();
    while batches.len() < want {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            if message.contains("event: events") {
                let data = message
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                batches.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    batches
}

#[test]
fn a_stream_resumes_after_the_last_event_id_it_was_given() {
    let env = Env::new("dashboard-stream");
    seed(&env);
    let dash = Dashboard::start(&env);
    let last = env.count("SELECT max(id) FROM events");
    let all = stream_batches(dash.port, &dash.token, None, 1);
    let ids: Vec<i64> = all[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=last).collect::<Vec<_>>());
    // Reconnecting with Last-Event-ID: only what came after, even though ?after=0 was asked.
    let out = env.hook(
        "harness-pre-tool-use",
        fixture("claude-code-2.1.332/PreToolUse-Bash.json"),
    );
    assert!(out.status.success());
    let resumed = stream_batches(dash.port, &dash.token, Some(last), 1);
    let ids: Vec<i64> = resumed[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![last + 1]);
}

#[test]
fn status_json_is_the_dashboard_snapshot() {
    let env = Env::new("dashboard-status");
    seed(&env);
    let out = env
        .cmd("harness")
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "live_sessions",
        "recent_events",
        "quota",
        "activity",
        "session_list",
        "routes",
        "rate_limits",
        "costs",
        "reviews",
        "plans",
        "locks",
        "recent_problems",
    ] {
        assert!(v.get(key).is_some(), "status --json lacks {key}");
    }
    assert_eq!(v["plans"][0]["plan"], PLAN);
    assert_eq!(v["costs"]["by_provider"][0]["provider"], "claude");
    assert_eq!(v["costs"]["by_provider"][0]["cost_usd"], 3.0);
    assert_eq!(v["rate_limits"]["gemini"]["burn"]["requests_today"], 3);
}

// ---- harness usage --------------------------------------------------------------------------

/// An assistant transcript line as Claude Code 2.1.197 writes it.
fn assistant(session: &str, ts: &str, msg: &str, model: &str, usage: [u64; 4]) -> String {
    json!({
        "parentUuid": null, "isSidechain": false,
        "message": {
            "id": msg, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "ok"}],
            "usage": {
                "input_tokens": usage[0], "output_tokens": usage[1],
                "cache_creation_input_tokens": usage[2], "cache_read_input_tokens": usage[3],
            },
        },
        "requestId": format!("req_{msg}"), "type": "assistant",
        "uuid": format!("u-{msg}-{}", usage[1]), "timestamp": ts, "cwd": "/home/dev/proj",
        "sessionId": session, "version": "2.1.197",
    })
    .to_string()
}

#[test]
fn usage_totals_are_the_hand_computed_sums_of_the_transcripts() {
    let env = Env::new("dashboard-usage");
    let projects = env.home.join(".claude/projects/-home-dev-proj");
    std::fs::create_dir_all(&projects).unwrap();
    let opus = "claude-opus-4-8";
    let sonnet = "claude-sonnet-4-5";
    // Session a: msg 1 streamed as two lines (partial output 3, then final 30: counted once, the
    // larger), msg 2 the next day. Session b: one response, 6 hours after msg 1 (a new block).
    let a = [
        assistant(
            "a",
            "2026-11-20T10:15:00.000Z",
            "m1",
            opus,
            [100, 3, 1000, 5000],
        ),
        assistant(
            "a",
            "2026-11-20T10:15:01.000Z",
            "m1",
            opus,
            [100, 30, 1000, 5000],
        ),
        assistant("a", "2026-11-21T09:00:00.000Z", "m2", opus, [7, 70, 0, 700]),
    ];
    let b = [assistant(
        "b",
        "2026-11-20T16:30:00.000Z",
        "m3",
        sonnet,
        [1, 2, 3, 4],
    )];
    std::fs::write(projects.join("a.jsonl"), a.join("\n") + "\n").unwrap();
    std::fs::write(projects.join("b.jsonl"), b.join("\n") + "\n").unwrap();
    let usage = |report: &str| -> Value {
        let out = env
            .cmd("harness")
            .env("TZ", "UTC")
            .args(["usage", report, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", support::stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let totals = json!({"input": 108, "output": 102, "cache_write": 1003, "cache_read": 5704});
    let check = |t: &Value| {
        assert_eq!(t["inputTokens"], totals["input"]);
        assert_eq!(t["outputTokens"], totals["output"]);
        assert_eq!(t["cacheCreationTokens"], totals["cache_write"]);
        assert_eq!(t["cacheReadTokens"], totals["cache_read"]);
        assert_eq!(t["totalTokens"], 108 + 102 + 1003 + 5704);
    };

    let daily = usage("daily");
    check(&daily["totals"]);
    let days: Vec<&str> = daily["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2026-11-20", "2026-11-21"]);
    assert_eq!(daily["daily"][0]["inputTokens"], 101);
    assert_eq!(daily["daily"][0]["outputTokens"], 32);
    // Opus 4.8 at $5/$25/$6.25/$0.50 and Sonnet at $3/$15/$3.75/$0.30 per million.
    let day1 = (100.0 * 5.0
        + 30.0 * 25.0
        + 1000.0 * 6.25
        + 5000.0 * 0.5
        + 3.0
        + 2.0 * 15.0
        + 3.0 * 3.75
        + 4.0 * 0.3)
        / 1e6;
    let got = daily["daily"][0]["totalCost"].as_f64().unwrap();
    assert!((got - day1).abs() < 1e-6, "{got} != {day1}");

    let sessions = usage("sessions");
    check(&sessions["totals"]);
    let a_row = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sessionId"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a_row["outputTokens"], 100);
    assert_eq!(a_row["modelsUsed"], json!([opus]));

    let blocks = usage("blocks");
    let starts: Vec<&str> = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["startTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-11-20T10:00:00.000Z",
            "2026-11-20T16:00:00.000Z",
            "2026-11-21T09:00:00.000Z"
        ]
    );
    let block_total: u64 = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["totalTokens"].as_u64().unwrap())
        .sum();
    assert_eq!(block_total, 108 + 102 + 1003 + 5704);

    // The table form prints the same totals.
    let out = env
        .cmd("harness")
        .env("TZ", "UTC")
        .args(["usage", "daily"])
        .output()
        .unwrap();
    let table = support::stdout(&out);
    assert!(
        table.contains("2026-11-21") && table.contains("6917"),
        "{table}"
    );
}

#[test]
fn base64_decodes() {
    assert_eq!(browser::base64_decode("aGVsbG8="), b"hello");
    assert_eq!(browser::base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(browser::base64_decode("aGk"), b"hi");
}

/// A client that trickles its request a byte at a time is cut off once the whole request has had
/// its few seconds, not kept as long as each byte comes within a per-read timeout (slowloris).
#[test]
fn a_request_trickled_byte_by_byte_is_cut_off() {
    let env = Env::new("dashboard-slow");
    seed(&env);
    let dash = Dashboard::start(&env);
    let mut s = TcpStream::connect(("127.0.0.1", dash.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    s.write_all(b"GET /api/snapshot HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let closed = loop {
        if started.elapsed() > Duration::from_secs(20) {
            break None;
        }
        // A header byte every 250 ms: well inside any per-read timeout.
        if s.write_all(b"x").is_err() {
            break Some(started.elapsed());
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            _ => break Some(started.elapsed()),
        }
    };
    let closed = closed.expect("still open after 20 s of trickling");
    assert!(
        closed < Duration::from_secs(8),
        "closed only after {closed:?}"
    );
    // The server itself is fine for the next client.
    let snap = request(
        dash.port,
        "GET",
        "/api/snapshot",
        &[("X-Harness-Token", &dash.token)],
        b"",
    );
    assert_eq!(snap.status, 200);
}

/// `harness dashboard --open` started with `script` as the only xdg-open on its PATH.
fn open_with_xdg_open(env: &Env, script: &str, stdout: Stdio, stderr: Stdio) -> Child {
    use std::os::unix::fs::PermissionsExt;
    let bin = env.home.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let xdg_open = bin.join("xdg-open");
    std::fs::write(&xdg_open, script).unwrap();
    std::fs::set_permissions(&xdg_open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(support::bin("harness"));
    cmd.env_clear();
    env.apply_std(&mut cmd);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .args(["dashboard", "--port", "0", "--open"])
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// `--open` hands xdg-open an owner-only file that redirects to the page: the token never sits on
/// a command line, where any user on the machine could read it with `ps`.
#[test]
fn open_keeps_the_token_off_the_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("dashboard-open");
    seed(&env);
    let record = env.home.join("xdg-open-args");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{0}.tmp'\n\
         cat \"$1\" > '{0}.page'\nmv '{0}.tmp' '{0}'\n",
        record.display()
    );
    let mut child = open_with_xdg_open(&env, &script, Stdio::piped(), Stdio::inherit());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let token = first.trim().rsplit("token=").next().unwrap().to_owned();
    assert_eq!(token.len(), 32, "{first}");
    let started = Instant::now();
    while !record.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = std::fs::read_to_string(&record).expect("xdg-open was not run");
    let page = std::fs::read_to_string(record.with_extension("page")).unwrap();
    let opened = std::path::PathBuf::from(args.trim());
    let mode = std::fs::metadata(&opened).map(|m| m.permissions().mode() & 0o777);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !args.contains(&token),
        "token on xdg-open's command line: {args}"
    );
    assert!(page.contains(&format!("?token={token}")), "{page}");
    assert_eq!(mode.unwrap(), 0o600, "{}", opened.display());
}

/// An xdg-open that starts but finds no browser is told about, with what to do instead.
#[test]
fn open_says_so_when_xdg_open_fails() {
    let env = Env::new("dashboard-open-fails");
    seed(&env);
    let mut child = open_with_xdg_open(&env, "#!/bin/sh\nexit 3\n", Stdio::null(), Stdio::piped());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut said = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.contains("xdg-open could not open the page");
                said.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = said
        .iter()
        .find(|l| l.contains("xdg-open could not open the page"))
        .unwrap_or_else(|| panic!("no word of the failure: {said:?}"));
    assert!(line.contains("exit status: 3"), "{line}");
    assert!(line.contains("open the URL above by hand"), "{line}");
}
