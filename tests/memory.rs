//! Memory across compaction, sessions and providers, through the built hook binaries and the
//! `harness memory` CLI: a long session (recorded Claude Code payloads) compacted twice, the
//! project brief a later session (Claude's or Gemini's) gets, what Gemini gets at BeforeAgent,
//! and search quality on a set of queries with expected answers.

mod support;

use std::path::PathBuf;

use agent_harness::policy::review_gate::{Finding, Status};
use agent_harness::store::Store;
use agent_harness::store::memory::{self as store, Filter};
use serde_json::{Value, json};
use support::{Env, stdout};

const SESSION: &str = "27bffab0-4151-4e78-ad34-7c89b0e5aea3";

struct Project {
    env: Env,
    root: PathBuf,
}

impl Project {
    fn new(label: &str) -> Project {
        let env = Env::new(label);
        let root = env.dir.path().join("project");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        Project { env, root }
    }

    /// A recorded payload (`tests/fixtures/claude-code-2.1.197/<name>.json`) moved into this
    /// project and session, with `changes` applied.
    fn recorded(&self, name: &str, session: &str, changes: Value) -> Value {
        let mut v: Value = serde_json::from_slice(&support::fixture(&format!(
            "claude-code-2.1.197/{name}.json"
        )))
        .unwrap();
        v["session_id"] = json!(session);
        v["cwd"] = json!(self.root);
        v["transcript_path"] = json!(self.env.dir.path().join("no-transcript.jsonl"));
        for (k, val) in changes.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    /// Runs the hook for a payload; its stdout JSON, or Null.
    fn hook(&self, v: Value) -> Value {
        let event = v["hook_event_name"].as_str().unwrap().to_owned();
        let out = self
            .env
            .hook(support::binary_for(&event), v.to_string().into_bytes());
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stderr.is_empty(), "{}", support::stderr(&out));
        let text = stdout(&out);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    fn context(&self, v: Value) -> Option<String> {
        let out = self.hook(v);
        out["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .map(str::to_owned)
    }

    /// One turn of `session`: a prompt, an Edit of each file, the closing message.
    fn turn(&self, session: &str, prompt: &str, files: &[String], reply: &str) {
        self.hook(self.recorded("UserPromptSubmit", session, json!({"prompt": prompt})));
        for (i, rel) in files.iter().enumerate() {
            let path = self.root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "hello\n").unwrap();
            let id = format!("toolu_{prompt:.8}_{i}").replace(' ', "_");
            let input = json!({"file_path": path, "old_string": "hi", "new_string": "hello",
                               "replace_all": false});
            for name in ["PreToolUse-Edit", "PostToolUse-Edit"] {
                self.hook(self.recorded(
                    name,
                    session,
                    json!({"tool_input": input, "tool_use_id": id}),
                ));
            }
        }
        self.hook(self.recorded("Stop", session, json!({"last_assistant_message": reply})));
    }

    fn store(&self) -> Store {
        Store::open(&self.env.db, std::time::Duration::from_secs(2)).unwrap()
    }

    /// A REJECT of `session` with one finding on `file`.
    fn reject(&self, session: &str, file: &str, problem: &str) {
        let mut s = self.store();
        s.write(|tx| {
            let db = |e| agent_harness::error::Error::db("test", "x", e);
            let id =
                agent_harness::store::reviews::open(tx, session, 1, Status::Running, "cli", None)
                    .map_err(db)?;
            let finding = Finding {
                file: file.into(),
                line: Some(12),
                severity: "major".into(),
                problem: problem.into(),
                fix: "fix it".into(),
            };
            agent_harness::store::reviews::finish(
                tx,
                id,
                2,
                Status::Reject,
                Some("no"),
                &[finding],
                None,
                &[],
            )
            .map_err(db)
        })
        .unwrap();
    }

    fn harness(&self, args: &[&str]) -> std::process::Output {
        self.env
            .cmd("harness")
            .args(args)
            .current_dir(&self.root)
            .output()
            .unwrap()
    }
}

fn no_controls(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a control character in {text:?}"
    );
}

#[test]
fn a_long_session_compacted_twice_gets_its_files_and_open_findings_back_within_budget() {
    let p = Project::new("memory-compact");
    p.hook(p.recorded("SessionStart-startup", SESSION, json!({})));
    // 30 turns, two files each: 60 files, far more than a hand-back can name.
    for t in 0..30 {
        let files = vec![format!("src/mod{t}/a.rs"), format!("src/mod{t}/b.rs")];
        p.turn(
            SESSION,
            &format!("step {t}: implement part {t} of the importer"),
            &files,
            &format!("Part {t} done."),
        );
    }
    p.reject(
        SESSION,
        &p.root.join("src/mod29/a.rs").to_string_lossy(),
        "the importer drops the last row",
    );

    let budget = 2048;
    for round in 0..2 {
        p.hook(p.recorded("PreCompact-manual", SESSION, json!({})));
        let text = p
            .context(p.recorded("SessionStart-compact", SESSION, json!({})))
            .expect("a hand-back after the compaction");
        assert!(text.len() <= budget, "round {round}: {} bytes", text.len());
        no_controls(&text);
        // The task, the newest edits, and the open finding.
        assert!(text.contains("step 0: implement part 0"), "{text}");
        assert!(
            text.contains("src/mod29/a.rs") && text.contains("src/mod29/b.rs"),
            "{text}"
        );
        assert!(text.contains("src/mod28/a.rs"), "{text}");
        assert!(text.contains("more)"), "the rest is counted: {text}");
        assert!(text.contains("the importer drops the last row"), "{text}");
        assert!(text.contains("src/mod29/a.rs:12"), "{text}");
        // The work goes on between the two compactions: the second hand-back knows it.
        p.turn(
            SESSION,
            &format!("after compaction {round}: polish"),
            &[format!("src/late{round}.rs")],
            "Polished.",
        );
    }
    let text = p
        .context(p.recorded("SessionStart-compact", SESSION, json!({})))
        .unwrap();
    assert!(text.contains("src/late0.rs"), "{text}");
    assert_eq!(
        p.env
            .count("SELECT count(*) FROM memory WHERE kind = 'snapshot'"),
        2
    );
}

#[test]
fn a_new_session_gets_the_projects_brief_and_an_empty_project_gets_nothing() {
    let p = Project::new("memory-brief");
    let fresh = p.context(p.recorded("SessionStart-startup", SESSION, json!({})));
    assert_eq!(fresh, None, "nothing to say in a new project");
    p.turn(
        SESSION,
        "add a CSV importer",
        &["src/import.rs".into()],
        "The importer reads CSV now.\x1b]52;c;ZXZpbA==\x07",
    );
    p.reject(
        SESSION,
        &p.root.join("src/import.rs").to_string_lossy(),
        "quoted commas split fields",
    );
    let out = p.harness(&[
        "memory", "add", "the", "importer", "must", "keep", "row", "order",
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));

    let later = "9d1e2f30-0000-4000-8000-000000000001";
    let brief = p
        .context(p.recorded("SessionStart-startup", later, json!({})))
        .expect("a brief");
    no_controls(&brief);
    assert!(brief.len() <= 2048);
    assert!(brief.contains("Claude session 27bffab0"), "{brief}");
    assert!(brief.contains("add a CSV importer"), "{brief}");
    assert!(brief.contains("src/import.rs"), "{brief}");
    assert!(brief.contains("quoted commas split fields"), "{brief}");
    assert!(
        brief.contains("the importer must keep row order"),
        "{brief}"
    );
    assert!(
        brief.contains("harness memory add"),
        "the model is told how to add a note"
    );
    assert!(!brief.contains("ZXZpbA"), "{brief}");

    // Gemini CLI, through the same hooks: the same brief at its SessionStart.
    let gemini_start = json!({"session_id": "g-1", "cwd": p.root, "hook_event_name": "SessionStart",
        "timestamp": "2026-12-02T00:00:00.000Z", "source": "startup",
        "transcript_path": p.env.dir.path().join("g.json")});
    let g = p.context(gemini_start).expect("Gemini's brief");
    assert!(
        g.contains("add a CSV importer") && g.contains("quoted commas"),
        "{g}"
    );
    assert_eq!(g, brief, "one brief, kept, for both providers");

    // The kept brief is made again once the project's memory changes, and once a review does.
    p.turn(
        later,
        "parse quoted fields",
        &["src/quote.rs".into()],
        "Quotes parse.",
    );
    p.reject(
        later,
        &p.root.join("src/quote.rs").to_string_lossy(),
        "escaped quotes are doubled",
    );
    let third = "9d1e2f30-0000-4000-8000-000000000002";
    let again = p
        .context(p.recorded("SessionStart-startup", third, json!({})))
        .expect("a brief");
    assert!(
        again.contains("parse quoted fields") && again.contains("src/quote.rs"),
        "{again}"
    );
    assert!(again.contains("escaped quotes are doubled"), "{again}");
    assert_eq!(
        p.env
            .count("SELECT count(*) FROM meta WHERE key LIKE 'brief:%'"),
        1
    );
}

#[test]
fn gemini_gets_what_matches_its_prompt_at_before_agent() {
    let p = Project::new("memory-gemini");
    p.turn(
        SESSION,
        "make the exporter stream rows instead of buffering",
        &["src/export.rs".into()],
        "The exporter streams now; memory stays flat.",
    );
    p.turn(
        SESSION,
        "rename the config loader",
        &["src/config.rs".into()],
        "Renamed.",
    );
    let before = |prompt: &str| {
        json!({"session_id": "g-2", "cwd": p.root, "hook_event_name": "BeforeAgent",
            "timestamp": "2026-12-02T00:00:00.000Z", "prompt": prompt,
            "transcript_path": p.env.dir.path().join("g.json")})
    };
    let text = p
        .context(before("why does the exporter stream?"))
        .expect("a match");
    let first = text.lines().find(|l| l.starts_with("- ")).unwrap();
    assert!(first.contains("exporter streams"), "{text}");
    assert_eq!(p.context(before("zebra giraffe")), None);
    // Claude's prompts get no search (its UserPromptSubmit stays as fast as before).
    assert_eq!(
        p.context(p.recorded("UserPromptSubmit", SESSION, json!({"prompt": "exporter"}))),
        None
    );
}

#[test]
fn memory_off_captures_and_hands_back_nothing() {
    let p = Project::new("memory-off");
    p.env.config(r#"{"memory": {"enabled": false}}"#);
    p.turn(SESSION, "do a thing", &["src/a.rs".into()], "Done.");
    p.hook(p.recorded("PreCompact-manual", SESSION, json!({})));
    assert_eq!(
        p.context(p.recorded("SessionStart-compact", SESSION, json!({}))),
        None
    );
    assert_eq!(p.env.count("SELECT count(*) FROM memory"), 0);
}

#[test]
fn a_budget_out_of_range_is_a_clear_config_error() {
    let p = Project::new("memory-budget");
    p.env.config(r#"{"memory": {"budget_bytes": 10}}"#);
    let out = p.harness(&["memory", "list"]);
    assert!(!out.status.success());
    let err = support::stderr(&out);
    assert!(
        err.contains("memory.budget_bytes must be between 256 and 16384"),
        "{err}"
    );
}

#[test]
fn the_cli_adds_lists_searches_and_forgets_with_secrets_redacted() {
    let p = Project::new("memory-cli");
    let out = p.harness(&[
        "memory",
        "add",
        "deploy token is ghp_abcdefghijklmnopqrstuvwxyz0123456789 do not print",
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(stdout(&out).contains("remembered #1"));
    let out = p.harness(&["memory", "search", "deploying", "--json"]);
    let hits: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["id"], 1);
    assert_eq!(hits[0]["kind"], "note");
    assert_eq!(hits[0]["project"], json!(p.root));
    assert!(!hits[0]["text"].as_str().unwrap().contains("abcdefghij"));
    // A session's items go with it; the search index with them.
    p.turn(SESSION, "tune the deploy script", &[], "Tuned.");
    let out = p.harness(&["memory", "forget", "--session", "27bf"]);
    assert!(stdout(&out).contains("forgot 1 item"), "{}", stdout(&out));
    let out = p.harness(&["memory", "search", "deploy"]);
    let text = stdout(&out);
    assert!(
        text.contains("#1 note") && !text.contains("tune the"),
        "{text}"
    );
    let out = p.harness(&["memory", "forget", "1"]);
    assert!(out.status.success());
    let out = p.harness(&["memory", "search", "deploy"]);
    assert!(stdout(&out).contains("nothing remembered matches"));
    let out = p.harness(&["memory", "forget", "1"]);
    assert!(support::stderr(&out).contains("nothing remembered has id 1"));
    // The model's Bash tool in Claude Code: the note belongs to its session.
    let out = p
        .env
        .cmd("harness")
        .args(["memory", "add", "from the model"])
        .current_dir(&p.root)
        .env("CLAUDE_CODE_SESSION_ID", SESSION)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = p.harness(&["memory", "list", "--session", "27bffab0", "--json"]);
    let v: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(v["text"], "from the model");
    assert_eq!(v["agent"], "claude");
}

#[test]
fn search_puts_the_relevant_note_first_for_every_query_of_the_set() {
    let set: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/memory/search.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let p = Project::new("memory-search");
    let project = p.root.to_string_lossy().into_owned();
    let mut s = p.store();
    let mut ids = std::collections::HashMap::new();
    s.write(|tx| {
        for n in set["notes"].as_array().unwrap() {
            let text = agent_harness::memory::clean(n["text"].as_str().unwrap(), 2000);
            let id = store::add(tx, "note", None, "user", &project, 1, &text)
                .map_err(|e| agent_harness::error::Error::db("test", "x", e))?;
            ids.insert(id, n["key"].as_str().unwrap().to_owned());
        }
        Ok(())
    })
    .unwrap();
    let conn = s.reader().unwrap();
    let mut misses = Vec::new();
    let queries = set["queries"].as_array().unwrap();
    for q in queries {
        let query = q["query"].as_str().unwrap();
        let found = store::search(conn, query, &Filter::default(), 3).unwrap();
        let first = found.first().map(|(i, _)| ids[&i.id].clone());
        if first.as_deref() != q["first"].as_str() {
            misses.push(format!("{query:?}: got {first:?}, want {}", q["first"]));
        }
    }
    assert!(
        misses.is_empty(),
        "{} of {} missed: {misses:#?}",
        misses.len(),
        queries.len()
    );
}
