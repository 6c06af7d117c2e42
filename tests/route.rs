//! Delegation advice: the classifier on prompts it never trained on, the pure policy's factors,
//! and the UserPromptSubmit hook that scores typed prompts, stores every decision and adds the
//! note only when Gemini is selected.

mod support;

use std::collections::BTreeMap;

use agent_harness::policy::route::{self, Headroom, Input, Past, Pick, Settings};
use agent_harness::route::model::Model;
use agent_harness::route::{Features, TaskType};
use serde_json::{Value, json};
use support::Env;

fn settings<'a>(prefer: &'a BTreeMap<String, String>, keep: &'a [String]) -> Settings<'a> {
    Settings {
        threshold: 0.5,
        prefer,
        keep_on_claude: keep,
        warn_pct: 80.0,
    }
}

fn decide(prompt: &str, headroom: Headroom, past: Past, s: &Settings<'_>) -> route::Advice {
    let model = Model::shipped().expect("the shipped weights match this build");
    let features = Features::of(prompt);
    let scores = model.score(&features);
    let input = Input {
        prompt,
        features: &features,
        scores: &scores,
        project_files: None,
        headroom,
        past,
    };
    route::advise(&input, s, 1_000)
}

fn neutral(prompt: &str) -> route::Advice {
    let prefer = BTreeMap::new();
    decide(
        prompt,
        Headroom::default(),
        Past::default(),
        &settings(&prefer, &[]),
    )
}

/// (precision, recall) of "advise Gemini" over a labelled file.
fn precision_recall(file: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/data/route/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let truth = TaskType::parse(v["type"].as_str().unwrap())
            .unwrap()
            .suits_gemini();
        let said = neutral(v["prompt"].as_str().unwrap()).selected == Pick::Gemini;
        match (truth, said) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
    }
    (tp / (tp + fp), tp / (tp + fn_))
}

#[test]
fn the_labelled_sets_are_big_enough_and_kept_apart() {
    let read = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/data/route/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let (train, test, styled) = (
        read("train.jsonl"),
        read("test.jsonl"),
        read("styled.jsonl"),
    );
    assert!(train.lines().count() + test.lines().count() >= 200);
    for line in test.lines().chain(styled.lines()) {
        assert!(
            !train.lines().any(|t| t == line),
            "a held-out prompt is in the training split: {line}"
        );
    }
}

/// Floors, not targets: the figures are reported by `cargo run --example train_route --eval`.
#[test]
fn advice_on_prompts_the_model_never_saw_stays_precise() {
    let (p, r) = precision_recall("test.jsonl");
    assert!(
        p >= 0.85 && r >= 0.85,
        "held-out precision {p:.2} recall {r:.2}"
    );
    let (p, r) = precision_recall("styled.jsonl");
    assert!(
        p >= 0.85 && r >= 0.85,
        "styled precision {p:.2} recall {r:.2}"
    );
}

#[test]
fn broad_reading_is_handed_to_gemini_and_a_precise_edit_is_not() {
    let a = neutral("Summarise the whole repo: what does each top-level directory do?");
    assert_eq!(a.selected, Pick::Gemini);
    let note = a.note.unwrap();
    assert!(
        note.contains("/delegate-gemini Summarise the whole repo"),
        "{note}"
    );
    assert!(
        note.contains("harness delegate 'Summarise the whole repo"),
        "{note}"
    );
    assert!(note.lines().count() <= 3, "{note}");
    let e = neutral("In src/config.rs rename `timeout` to `timeout_secs`.");
    assert_eq!(e.selected, Pick::Claude);
    assert!(e.note.is_none());
}

#[test]
fn a_prompt_that_mentions_gemini_but_is_an_edit_stays_on_claude() {
    let a = neutral("Add a log line when the Gemini run times out, in src/gemini/runner.rs.");
    assert_eq!(a.selected, Pick::Claude, "{}", a.reason);
}

#[test]
fn near_claudes_limit_the_bar_drops_and_when_claude_is_out_gemini_is_the_only_choice() {
    let prefer = BTreeMap::new();
    let s = settings(&prefer, &[]);
    let prompt = "refactor auth";
    let calm = decide(prompt, Headroom::default(), Past::default(), &s);
    let tight = decide(
        prompt,
        Headroom {
            claude_used_pct: Some(99.0),
            ..Headroom::default()
        },
        Past::default(),
        &s,
    );
    assert!(tight.bar < calm.bar - 0.25, "{} vs {}", tight.bar, calm.bar);
    let out = decide(
        prompt,
        Headroom {
            claude_out_until_ms: Some(10_000),
            ..Headroom::default()
        },
        Past::default(),
        &s,
    );
    assert_eq!(out.selected, Pick::Gemini);
    assert!(out.reason.contains("only affordable"), "{}", out.reason);
    let both = Headroom {
        claude_out_until_ms: Some(10_000),
        gemini_out_until_ms: Some(10_000),
        ..Headroom::default()
    };
    assert_eq!(
        decide(prompt, both, Past::default(), &s).selected,
        Pick::Claude
    );
}

#[test]
fn keep_words_and_preferences_override_the_score() {
    let prefer: BTreeMap<String, String> = [("codebase".to_string(), "claude".to_string())].into();
    let none = BTreeMap::new();
    let prompt = "Read through the entire project and write an architecture overview.";
    assert_eq!(
        decide(
            prompt,
            Headroom::default(),
            Past::default(),
            &settings(&prefer, &[])
        )
        .selected,
        Pick::Claude
    );
    let keep = vec!["ARCHITECTURE".to_string()];
    let a = decide(
        prompt,
        Headroom::default(),
        Past::default(),
        &settings(&none, &keep),
    );
    assert_eq!(a.selected, Pick::Claude);
    assert!(a.reason.contains("keep_on_claude"), "{}", a.reason);
}

#[test]
fn advice_that_is_ignored_raises_the_bar_and_runs_that_went_well_raise_the_score() {
    let prefer = BTreeMap::new();
    let s = settings(&prefer, &[]);
    let prompt = "Give me an overview of the codebase.";
    let base = decide(prompt, Headroom::default(), Past::default(), &s);
    let ignored = decide(
        prompt,
        Headroom::default(),
        Past {
            advised: 8,
            followed: 1,
            succeeded: 1,
        },
        &s,
    );
    assert!(ignored.bar > base.bar);
    let good = decide(
        prompt,
        Headroom::default(),
        Past {
            advised: 4,
            followed: 4,
            succeeded: 4,
        },
        &s,
    );
    assert!(good.score > base.score);
    assert_eq!(good.gemini.past_success, Some(1.0));
}

#[test]
fn only_typed_prompts_are_scored() {
    assert!(route::is_typed("summarise the repo", None));
    assert!(route::is_typed("summarise the repo", Some("user")));
    assert!(!route::is_typed(
        "<task-notification>\n<task-id>x</task-id>",
        None
    ));
    assert!(!route::is_typed("/delegate-gemini summarise", None));
    assert!(!route::is_typed("summarise the repo", Some("agent")));
    assert!(!route::is_typed("   ", None));
}

fn prompt_payload(session: &str, cwd: &str, prompt: &str) -> Vec<u8> {
    json!({"session_id": session, "transcript_path": "/nonexistent.jsonl", "cwd": cwd,
           "hook_event_name": "UserPromptSubmit", "prompt": prompt})
    .to_string()
    .into_bytes()
}

fn context(out: &std::process::Output) -> String {
    let s = support::stdout(out);
    if s.trim().is_empty() {
        return String::new();
    }
    let v: Value = serde_json::from_str(&s).unwrap();
    v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A test env whose store exists (made by its first reader, `harness routes`).
fn env_with_store(name: &str) -> Env {
    let env = Env::new(name);
    let out = env.cmd("harness").args(["routes"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env
}

/// Stores a routing decision as the hook would, with a fixed score and bar.
fn add_route(
    conn: &rusqlite::Connection,
    session: &str,
    decided_ms: i64,
    task: &str,
    task_type: &str,
    selected: &str,
) {
    conn.execute(
        "INSERT INTO routes (session_id, decided_ms, task, task_type, complexity, score, bar, \
         selected, reason, factors) VALUES (?1, ?2, ?3, ?4, 'small', 0.9, 0.5, ?5, 'r', '{}')",
        rusqlite::params![session, decided_ms, task, task_type, selected],
    )
    .unwrap();
}

/// Stores a successful delegation run that `session` started at `created_ms`.
fn add_run(conn: &rusqlite::Connection, run_id: &str, session: &str, created_ms: i64) {
    conn.execute(
        "INSERT INTO runs (run_id, requester, task, prompt, mode, status, created_ms) \
         VALUES (?1, ?2, 't', 'p', 'read-only', 'success', ?3)",
        rusqlite::params![run_id, session, created_ms],
    )
    .unwrap();
}

#[test]
fn the_hook_notes_a_broad_task_stores_every_decision_and_never_blocks() {
    let env = Env::new("route-hook");
    let cwd = env.dir.path().to_string_lossy().into_owned();
    let out = env.hook(
        "harness-user-prompt-submit",
        prompt_payload("s1", &cwd, "Summarise the whole repo for me."),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        context(&out).starts_with("agent-harness route: hand this to Gemini"),
        "{}",
        context(&out)
    );
    let out = env.hook(
        "harness-user-prompt-submit",
        prompt_payload("s1", &cwd, "Fix the typo in README.md line 3."),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(context(&out), "");
    assert_eq!(env.count("SELECT count(*) FROM routes"), 2);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM routes WHERE selected = 'gemini' AND task_type = 'codebase'"
        ),
        1
    );
    // The hook only stores: outcomes are settled by the readers.
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE outcome IS NOT NULL"),
        0
    );
    let out = env.cmd("harness").args(["routes"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first turn ended with the second prompt, with no delegation run: kept on Claude. The
    // second, the session's newest, may still be running: open.
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE id = 1 AND outcome = 'kept'"),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE id = 2 AND outcome IS NULL"),
        1
    );
}

#[test]
fn the_history_counts_an_unsettled_decision_as_its_settlement_will() {
    use agent_harness::store::routes;
    let env = env_with_store("route-past");
    let conn = env.db();
    let now = agent_harness::time::now_ms();
    let min = 60_000;
    // Session a: two pieces of advice 5 minutes apart, then a run a minute after the second
    // (inside the first one's window, but in the second one's turn); session b: one, followed.
    for (session, ago) in [("a", 50), ("a", 45), ("b", 40)] {
        add_route(&conn, session, now - ago * min, "t", "codebase", "gemini");
    }
    for (run, session, ago) in [("run-a", "a", 44), ("run-b", "b", 35)] {
        add_run(&conn, run, session, now - ago * min);
    }
    let before = routes::past(&conn, "codebase", now).unwrap();
    assert!(routes::settle_all(&conn, now, 100).unwrap() == 3);
    let after = routes::past(&conn, "codebase", now).unwrap();
    assert_eq!(
        (after.advised, after.followed, after.succeeded),
        (3, 2, 2),
        "a's first turn was kept: the run followed the second prompt"
    );
    assert_eq!(
        (before.advised, before.followed, before.succeeded),
        (after.advised, after.followed, after.succeeded),
        "the hook's history before settlement is the one after it"
    );
}

#[test]
fn readers_settle_every_ended_turn_in_pages_and_the_newest_only_when_followed() {
    let env = env_with_store("route-settle");
    let conn = env.db();
    let now = agent_harness::time::now_ms();
    // Session a: 45 decisions a minute apart, the newest a minute old, followed by a run; session
    // b: one decision two hours old.
    for i in 0..45i64 {
        add_route(
            &conn,
            "a",
            now - (45 - i) * 60_000,
            "t",
            "codebase",
            "gemini",
        );
    }
    add_run(&conn, "run-a", "a", now - 30_000);
    add_route(&conn, "b", now - 2 * 3_600_000, "t", "edit", "claude");
    let out = env
        .cmd("harness")
        .args(["routes", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE outcome IS NULL"),
        0
    );
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE outcome = 'delegated' AND run_id = 'run-a'"),
        1,
        "only the newest turn of a, in which the run started, followed the advice"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM routes WHERE outcome = 'kept'"),
        45
    );
}

#[test]
fn a_task_notification_and_a_non_user_source_are_not_scored() {
    let env = Env::new("route-synthetic");
    let cwd = env.dir.path().to_string_lossy().into_owned();
    let note = "<task-notification>\n<summary>Agent finished: summarise the whole repo</summary>\n</task-notification>";
    let out = env.hook(
        "harness-user-prompt-submit",
        prompt_payload("s1", &cwd, note),
    );
    assert_eq!(context(&out), "");
    let mut v: Value =
        serde_json::from_slice(&prompt_payload("s1", &cwd, "Summarise the whole repo.")).unwrap();
    v["source"] = json!("system");
    let out = env.hook("harness-user-prompt-submit", v.to_string());
    assert_eq!(context(&out), "");
    assert_eq!(env.count("SELECT count(*) FROM routes"), 0);
}

#[test]
fn a_delegation_run_after_the_advice_counts_as_following_it() {
    let env = Env::new("route-followed");
    let cwd = env.dir.path().to_string_lossy().into_owned();
    env.hook(
        "harness-user-prompt-submit",
        prompt_payload("s1", &cwd, "Give me an overview of this codebase."),
    );
    let conn = env.db();
    conn.execute(
        "INSERT INTO runs (run_id, requester, task, prompt, mode, status, created_ms) \
         VALUES ('run-1', 's1', 't', 'p', 'read-only', 'success', (SELECT decided_ms + 1 FROM routes))",
        [],
    )
    .unwrap();
    let out = env
        .cmd("harness")
        .args(["routes", "--stats", "--json"])
        .output()
        .unwrap();
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats[0]["task_type"], "codebase");
    assert_eq!(stats[0]["followed"], 1, "{stats}");
    assert_eq!(stats[0]["succeeded"], 1, "{stats}");
    let out = env.cmd("harness").args(["routes", "1"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("delegated (success)"), "{text}");
}

#[test]
fn routing_can_be_switched_off() {
    let env = Env::new("route-off");
    env.config(r#"{"route": {"enabled": false}}"#);
    let cwd = env.dir.path().to_string_lossy().into_owned();
    let out = env.hook(
        "harness-user-prompt-submit",
        prompt_payload("s1", &cwd, "Summarise the whole repo."),
    );
    assert_eq!(context(&out), "");
    assert_eq!(env.count("SELECT count(*) FROM routes"), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, ..Default::default() })]

    /// The hook reads the history only when `history_matters` says it could change the pick: so
    /// for every prompt, quota and history, a pick made without it must equal the pick with it
    /// whenever `history_matters` is false.
    #[test]
    fn history_is_skipped_only_where_it_cannot_change_the_pick(
        line in 0usize..846,
        advised in 0u32..40,
        followed in 0u32..40,
        succeeded in 0u32..40,
        claude_used in proptest::option::of(0.0f64..100.0),
        gemini_used in proptest::option::of(0.0f64..100.0),
        threshold in 0.2f64..0.9,
    ) {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/route/train.jsonl"),
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let v: Value = serde_json::from_str(lines[line % lines.len()]).unwrap();
        let prompt = v["prompt"].as_str().unwrap();
        let prefer = BTreeMap::new();
        let s = Settings { threshold, ..settings(&prefer, &[]) };
        let headroom = Headroom {
            claude_used_pct: claude_used,
            gemini_used_pct: gemini_used,
            ..Headroom::default()
        };
        let followed = followed.min(advised);
        let past = Past { advised, followed, succeeded: succeeded.min(followed) };
        let without = decide(prompt, headroom, Past::default(), &s);
        let with = decide(prompt, headroom, past, &s);
        if !route::history_matters(&without) {
            proptest::prop_assert_eq!(with.selected, without.selected, "{}", prompt);
        }
        // And the reach bounds what history moves.
        let moved = (with.score - without.score).abs() + (with.bar - without.bar).abs();
        proptest::prop_assert!(moved <= route::HISTORY_REACH + 1e-9, "moved {}", moved);
    }
}

/// The note's Bash form is one shell word holding the task exactly as typed: `$(...)`, backticks,
/// quotes and backslashes neither run nor get mangled (a real `sh` reads it back).
#[test]
fn the_notes_shell_form_carries_the_task_as_typed_and_runs_nothing() {
    let task = r#"Summarise the whole repo, incl. $(touch /tmp/x) `id` "quoted" it's \n done"#;
    let a = neutral(task);
    assert_eq!(a.selected, Pick::Gemini, "{a:?}");
    assert_eq!(a.task, task);
    let note = a.note.unwrap();
    let start = note.find("harness delegate ").unwrap() + "harness delegate ".len();
    let end = note[start..].find("` with Bash").unwrap() + start;
    let word = &note[start..end];
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s {word}")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), task, "{word}");
}

/// `harness routes` heads its list like `events`, `locks`, `runs` and `reviews`.
#[test]
fn the_routes_list_has_a_header_row() {
    let env = env_with_store("route-header");
    add_route(
        &env.db(),
        "sess-header",
        agent_harness::time::now_ms(),
        "map the codebase",
        "codebase",
        "gemini",
    );
    let out = env.cmd("harness").args(["routes"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let heads: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        heads,
        [
            "ID", "TIME", "SESSION", "TYPE", "AGENT", "SCORE", "OUTCOME", "TASK"
        ],
        "{text}"
    );
    assert!(
        lines[1].contains("codebase") && lines[1].ends_with("map the codebase"),
        "{text}"
    );
    // The columns line up: each heading starts where its cells do (left-aligned ones).
    let at = |line: &str, s: &str| line.find(s).unwrap();
    assert_eq!(at(lines[0], "TYPE"), at(lines[1], "codebase"), "{text}");
    assert_eq!(at(lines[0], "TASK"), at(lines[1], "map the"), "{text}");
}
