//! `/review` with the fake `gemini`: the verdicts and failures a reviewer can give, and how the
//! Stop gate acts on each (through the built `harness` and `harness-stop` binaries).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::{Value, json};
use support::{Env, stdout};

const SESSION: &str = "5e55-review-test";

const APPROVE: &str =
    r#"{"verdict":"APPROVE","summary":"The change does what was asked.","findings":[]}"#;
const REJECT: &str = r#"{"verdict":"REJECT","summary":"The sum is off by one.","findings":[{"file":"src/lib.rs","line":3,"severity":"major","problem":"add() returns a + b + 1.","fix":"Return a + b."}]}"#;

/// A project in git with one committed file, changed in the working tree; a fake reviewer.
struct Review {
    env: Env,
    project: PathBuf,
}

impl Review {
    fn new(label: &str) -> Review {
        Review::with_config(label, json!({}))
    }

    fn with_config(label: &str, review: Value) -> Review {
        let env = Env::new(label);
        let project = env.dir.path().join("project");
        std::fs::create_dir_all(project.join("src")).unwrap();
        let git = |args: &[&str]| {
            let ok = StdCommand::new("git")
                .args(args)
                .current_dir(&project)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(
            project.join("src/lib.rs"),
            "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        )
        .unwrap();
        git(&["add", "."]);
        git(&["commit", "-qm", "init"]);
        std::fs::write(
            project.join("src/lib.rs"),
            "pub fn add(a: i32, b: i32) -> i32 {\n    // sum\n    a + b + 1\n}\n",
        )
        .unwrap();
        let project = std::fs::canonicalize(&project).unwrap();
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/gemini");
        env.config(
            &json!({
                "gemini": {"binary": fake, "trust_workspace": true, "fallback_model": ""},
                "review": review,
            })
            .to_string(),
        );
        let r = Review { env, project };
        r.hook(json!({"hook_event_name": "UserPromptSubmit",
                      "prompt": "make add() return the sum of its arguments"}));
        r
    }

    fn payload(&self, mut v: Value) -> Vec<u8> {
        let obj = v.as_object_mut().unwrap();
        obj.insert("session_id".into(), json!(SESSION));
        obj.insert("cwd".into(), json!(self.project));
        obj.insert(
            "transcript_path".into(),
            json!(self.env.dir.path().join("no-transcript.jsonl")),
        );
        v.to_string().into_bytes()
    }

    /// Runs the hook for a payload (the session's fields added); its stdout JSON, or Null.
    fn hook(&self, v: Value) -> Value {
        let event = v["hook_event_name"].as_str().unwrap().to_owned();
        let out = self.env.hook(support::binary_for(&event), self.payload(v));
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    fn stop(&self, active: bool) -> Value {
        self.hook(
            json!({"hook_event_name": "Stop", "stop_hook_active": active,
                         "last_assistant_message": "Done.", "background_tasks": []}),
        )
    }

    /// A successful Write of `rel` in the project, as Claude Code reports it afterwards.
    fn wrote(&self, rel: &str, content: &str) {
        let path = self.project.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let input = json!({"file_path": path, "content": content});
        self.hook(
            json!({"hook_event_name": "PreToolUse", "tool_name": "Write",
                         "tool_input": input, "tool_use_id": format!("toolu_{rel}")}),
        );
        self.hook(
            json!({"hook_event_name": "PostToolUse", "tool_name": "Write",
                         "tool_input": input, "tool_use_id": format!("toolu_{rel}"),
                         "tool_response": {"type": "create", "filePath": path}}),
        );
    }

    /// The fake reviewer's answers for the next calls, one per call (the last one repeats).
    fn answers(&self, answers: &[&str]) {
        let lines: Vec<String> = answers
            .iter()
            .map(|a| match *a {
                "QUOTA" | "HANG" => (*a).to_owned(),
                text => serde_json::to_string(text).unwrap(),
            })
            .collect();
        std::fs::write(self.verdicts(), lines.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_file(self.state());
    }

    fn verdicts(&self) -> PathBuf {
        self.env.dir.path().join("verdicts")
    }

    fn state(&self) -> PathBuf {
        self.env.dir.path().join("fake-state")
    }

    fn harness(&self, args: &[&str]) -> std::process::Output {
        self.env
            .cmd("harness")
            .args(args)
            .current_dir(&self.project)
            .env("FAKE_GEMINI_MODE", "verdict")
            .env("FAKE_GEMINI_VERDICTS", self.verdicts())
            .env("FAKE_GEMINI_STATE", self.state())
            .env("FAKE_GEMINI_LOG", self.env.dir.path().join("gemini.log"))
            .output()
            .unwrap()
    }

    /// `harness review --session SESSION`: its report.
    fn review(&self) -> String {
        let out = self.harness(&["review", "--session", SESSION]);
        assert!(out.status.success(), "{}", support::stderr(&out));
        stdout(&out)
    }

    /// The prompts the fake reviewer was given, in order.
    fn prompts(&self) -> Vec<String> {
        let log = std::fs::read(self.env.dir.path().join("gemini.log")).unwrap_or_default();
        log.split(|b| *b == 0x1e)
            .filter(|r| r.starts_with(b"ARGS"))
            .filter_map(|r| {
                r.split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .find_map(|a| a.strip_prefix("--prompt=").map(str::to_owned))
            })
            .collect()
    }

    fn latest(&self) -> agent_harness::store::reviews::Review {
        agent_harness::store::reviews::latest(&self.env.db(), SESSION)
            .unwrap()
            .expect("a review")
    }
}

fn reason(v: &Value) -> &str {
    assert_eq!(v["decision"], "block", "expected a block, got {v}");
    v["reason"].as_str().unwrap()
}

#[test]
fn an_approve_lets_the_turn_end_and_the_prompt_declares_criteria_and_change() {
    let r = Review::new("rv-approve");
    r.answers(&[APPROVE]);
    let report = r.review();
    assert!(report.contains("Gemini APPROVEs the change"), "{report}");
    assert_eq!(r.stop(false), Value::Null);
    let row = r.latest();
    assert_eq!(row.status, "approve");
    assert_eq!(row.criteria_from.as_deref(), Some("prompts"));
    assert_eq!(row.files, vec!["src/lib.rs".to_string()]);
    let prompts = r.prompts();
    assert_eq!(prompts.len(), 1);
    let p = &prompts[0];
    // The criteria come before the change, and the change is the diff against HEAD.
    let criteria_at = p
        .find("make add() return the sum")
        .expect("criteria in the prompt");
    let change_at = p.find("+    a + b + 1").expect("the diff in the prompt");
    assert!(criteria_at < change_at, "{p}");
    assert!(p.contains("\"verdict\": \"APPROVE\" or \"REJECT\""), "{p}");
    // Read-only: the reviewer runs under the runner's read-only policy.
    let log = std::fs::read_to_string(r.env.dir.path().join("gemini.log")).unwrap();
    assert!(log.contains("policy-read-only.toml"), "{log:?}");
}

#[test]
fn a_reject_blocks_stop_with_findings_and_the_exact_command() {
    let r = Review::new("rv-reject");
    r.answers(&[REJECT]);
    let report = r.review();
    assert!(report.contains("Gemini REJECTs the change"), "{report}");
    assert!(report.contains(&format!("harness review --session {SESSION}")));
    let block = r.stop(false);
    let text = reason(&block);
    assert!(text.contains("src/lib.rs:3"), "{text}");
    assert!(text.contains("add() returns a + b + 1."), "{text}");
    assert!(text.contains("Fix: Return a + b."), "{text}");
    assert!(
        text.contains(&format!("`harness review --session {SESSION}`")),
        "{text}"
    );
    assert!(text.contains("harness review --waive"), "{text}");
    assert_eq!(r.latest().blocks, 1);
}

#[test]
fn an_invalid_answer_is_repaired_once() {
    let r = Review::new("rv-repair");
    r.answers(&["Looks fine to me!", REJECT]);
    r.review();
    let row = r.latest();
    assert_eq!(row.status, "reject");
    assert_eq!(row.run_ids.len(), 2);
    let prompts = r.prompts();
    assert!(prompts[1].contains("not a valid verdict"), "{}", prompts[1]);
    assert!(prompts[1].contains("Looks fine to me!"), "{}", prompts[1]);
    assert_eq!(r.stop(false)["decision"], "block");
}

#[test]
fn an_answer_invalid_twice_is_reviewer_unavailable_and_never_blocks() {
    let r = Review::new("rv-invalid");
    r.answers(&[
        "Looks fine to me!",
        r#"{"verdict":"REJECT","summary":"x","findings":[]}"#,
    ]);
    let report = r.review();
    assert!(report.contains("reviewer is unavailable"), "{report}");
    assert!(report.contains("not a valid verdict, twice"), "{report}");
    assert_eq!(r.latest().status, "unavailable");
    assert_eq!(r.stop(false), Value::Null);
}

#[test]
fn a_quota_error_is_reviewer_unavailable_with_what_to_do() {
    let r = Review::new("rv-quota");
    r.answers(&["QUOTA"]);
    let report = r.review();
    assert!(report.contains("reviewer is unavailable"), "{report}");
    assert!(report.contains("(quota)"), "{report}");
    assert_eq!(r.latest().status, "unavailable");
    assert_eq!(r.stop(false), Value::Null);
}

#[test]
fn a_hanging_reviewer_is_stopped_at_the_timeout_and_never_blocks() {
    let r = Review::with_config("rv-hang", json!({"timeout_secs": 2}));
    r.answers(&["HANG"]);
    let began = std::time::Instant::now();
    let report = r.review();
    assert!(began.elapsed().as_secs() < 20, "took {:?}", began.elapsed());
    assert!(report.contains("(timeout)"), "{report}");
    assert_eq!(r.latest().status, "unavailable");
    assert_eq!(r.stop(false), Value::Null);
}

#[test]
fn a_reviewer_that_keeps_rejecting_is_capped_at_max_rounds_then_handed_to_the_user() {
    let r = Review::new("rv-cap");
    r.answers(&[REJECT]);
    let mut blocks = 0;
    let mut handoff = None;
    for round in 0..6 {
        r.review();
        let out = r.stop(round > 0);
        if out["decision"] == "block" {
            blocks += 1;
        } else {
            handoff = out["systemMessage"].as_str().map(str::to_owned);
            break;
        }
    }
    assert_eq!(blocks, 3);
    let handoff = handoff.expect("a hand-off message");
    assert!(handoff.contains("the decision is yours"), "{handoff}");
    assert!(handoff.contains("harness review --waive"), "{handoff}");
    // The gate is done with the thread: the next Stop passes quietly.
    assert_eq!(r.stop(false), Value::Null);
}

#[test]
fn stop_hook_active_never_gets_the_same_block_twice() {
    let r = Review::new("rv-active");
    r.answers(&[REJECT]);
    r.review();
    assert_eq!(r.stop(false)["decision"], "block");
    let again = r.stop(true);
    assert!(again.get("decision").is_none(), "{again}");
    assert!(
        again["systemMessage"]
            .as_str()
            .unwrap()
            .contains("not reviewed again")
    );
}

#[test]
fn background_tasks_still_running_are_not_judged() {
    let r = Review::new("rv-background");
    r.answers(&[REJECT]);
    r.review();
    let out = r.hook(json!({"hook_event_name": "Stop", "stop_hook_active": false,
        "background_tasks": [{"id": "b1", "type": "local_agent", "status": "running"}]}));
    assert_eq!(out, Value::Null);
    assert_eq!(r.latest().blocks, 0);
}

#[test]
fn the_user_waives_an_open_reject() {
    let r = Review::new("rv-waive");
    r.answers(&[REJECT]);
    r.review();
    assert_eq!(r.stop(false)["decision"], "block");
    // By hand, outside the session: the one open review.
    let out = r.harness(&["review", "--waive", "the reviewer misread the spec"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(stdout(&out).contains("waived"), "{}", stdout(&out));
    assert_eq!(r.stop(false), Value::Null);
    let row = r.latest();
    assert_eq!(row.status, "waived");
    assert_eq!(
        row.waive_reason.as_deref(),
        Some("the reviewer misread the spec")
    );
}

#[test]
fn a_change_after_the_review_asks_for_a_re_review_instead_of_old_findings() {
    let r = Review::new("rv-changed");
    r.answers(&[REJECT, APPROVE]);
    r.review();
    r.wrote(
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b // fixed\n}\n",
    );
    let text = reason(&r.stop(false)).to_owned();
    assert!(
        text.contains("differs from the one Gemini reviewed"),
        "{text}"
    );
    assert!(text.contains("src/lib.rs"), "{text}");
    assert!(!text.contains("add() returns a + b + 1."), "{text}");
    // The re-review approves: the turn may end.
    assert!(r.review().contains("APPROVEs"));
    assert_eq!(r.stop(true), Value::Null);
    // Both reviews are one thread.
    let conn = r.env.db();
    let threads: i64 = conn
        .query_row("SELECT count(DISTINCT thread) FROM reviews", [], |x| {
            x.get(0)
        })
        .unwrap();
    assert_eq!(threads, 1);
}

#[test]
fn a_sensitive_change_asks_for_a_review_once() {
    let r = Review::new("rv-sensitive");
    r.wrote("src/auth/token.rs", "pub fn check() -> bool { true }\n");
    let text = reason(&r.stop(false)).to_owned();
    assert!(text.contains("src/auth/token.rs"), "{text}");
    assert!(
        text.contains(&format!("harness review --session {SESSION}")),
        "{text}"
    );
    // Not run: the next Stop lets go, with a note, and the one after is quiet.
    let next = r.stop(true);
    assert!(
        next["systemMessage"].as_str().unwrap().contains("not run"),
        "{next}"
    );
    assert_eq!(r.stop(false), Value::Null);
}

/// A write too big to store whole (its body is clipped) still counts all its lines for the
/// changed-lines trigger, and the store keeps a few KB of it, not the file.
#[test]
fn a_big_write_stored_clipped_still_counts_its_lines() {
    let r = Review::with_config(
        "rv-lines",
        json!({"trigger_sensitive": false, "trigger_changed_lines": 100000}),
    );
    r.wrote("src/big.rs", &"let x = 1;\n".repeat(150_000));
    let text = reason(&r.stop(false)).to_owned();
    assert!(text.contains("about 150001 lines"), "{text}");
    let largest = r.env.count("SELECT max(length(payload)) FROM events");
    assert!(largest < 16 * 1024, "{largest} bytes stored for one event");
}

#[test]
fn the_sensitive_trigger_is_easy_to_turn_off() {
    let r = Review::with_config("rv-trigger-off", json!({"trigger_sensitive": false}));
    r.wrote("src/auth/token.rs", "pub fn check() -> bool { true }\n");
    assert_eq!(r.stop(false), Value::Null);
}

#[test]
fn slash_review_takes_its_criteria_from_the_expansion_never_a_shell() {
    let r = Review::new("rv-command");
    r.answers(&[APPROVE]);
    let marker = r.env.dir.path().join("pwned");
    let args = format!("add() must return a + b; $(touch {})", marker.display());
    r.hook(json!({"hook_event_name": "UserPromptExpansion", "expansion_type": "slash_command",
                  "command_name": "review", "command_args": args, "prompt": format!("/review {args}")}));
    let out = r.harness(&["review", "--pending", "--session", SESSION]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(stdout(&out).contains("APPROVEs"), "{}", stdout(&out));
    assert!(!marker.exists());
    let row = r.latest();
    assert_eq!(row.criteria_from.as_deref(), Some("given"));
    assert_eq!(row.trigger, "command");
    assert!(r.prompts()[0].contains("add() must return a + b; $(touch"));
}

#[test]
fn status_and_reviews_show_an_open_review_and_its_round() {
    let r = Review::new("rv-status");
    r.answers(&[REJECT]);
    r.review();
    r.stop(false);
    let status = stdout(&r.harness(&["status"]));
    assert!(status.contains("Open reviews (1)"), "{status}");
    assert!(status.contains("REJECT · round 1 of 3"), "{status}");
    let list = stdout(&r.harness(&["reviews"]));
    assert!(list.contains("REJECT"), "{list}");
    let shown = r.harness(&["reviews", "show", &r.latest().id.to_string(), "--json"]);
    let v: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(v["findings"][0]["line"], 3);
    assert_eq!(v["criteria_from"], "prompts");
}

/// With no --session and neither $CLAUDE_SESSION_ID nor $CLAUDE_CODE_SESSION_ID, there is no one
/// to gate and nothing to attribute the review to: refused as a usage error, nothing stored.
#[test]
fn a_review_without_a_session_is_refused_before_anything_is_stored() {
    let r = Review::new("rv-nosession");
    r.answers(&[APPROVE]);
    let out = r.harness(&["review"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = support::stderr(&out);
    assert!(
        err.contains("which session? pass --session ID (Claude Code sets $CLAUDE_CODE_SESSION_ID)"),
        "{err}"
    );
    assert!(r.prompts().is_empty(), "no reviewer ran");
    let listed = r.harness(&["reviews", "--json"]);
    assert!(listed.status.success());
    assert_eq!(stdout(&listed).trim(), "", "no review stored");
    // An empty $CLAUDE_CODE_SESSION_ID is no session either; a set one is.
    let out = r
        .env
        .cmd("harness")
        .args(["review"])
        .current_dir(&r.project)
        .env("CLAUDE_CODE_SESSION_ID", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Outside git, a session that edited nothing has nothing to review, and the report says why in
/// those terms rather than git's.
#[test]
fn outside_git_a_session_that_edited_nothing_is_told_so() {
    let r = Review::new("rv-nogit");
    let plain = r.env.dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let out = r
        .env
        .cmd("harness")
        .args(["review", "--session", SESSION])
        .current_dir(&plain)
        // The temp dir is under this checkout; git must not find it.
        .env("GIT_CEILING_DIRECTORIES", r.env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("not a git repository and the session edited no files"),
        "{text}"
    );
    assert!(!text.contains("no file differs from the base"), "{text}");
}
