//! File locks through the built hook binaries: who is denied, with what reason, when claims are
//! freed, collisions through the shell, and a race of many processes.

mod support;

use std::collections::HashMap;
use std::process::Output;
use std::time::Instant;

use serde_json::{Value, json};
use support::{Env, stderr, stdout};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

struct Project {
    env: Env,
    root: String,
}

fn project(label: &str) -> Project {
    let env = Env::new(label);
    let root = env.dir.path().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    let root = std::fs::canonicalize(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    Project { env, root }
}

impl Project {
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    fn claude(&self, bin: &str, session: &str, event: &str, extra: Value) -> Output {
        let mut p = json!({
            "session_id": session,
            "transcript_path": format!("/tmp/{session}.jsonl"),
            "cwd": self.root,
            "hook_event_name": event,
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        self.env.hook(bin, p.to_string())
    }

    /// A write as Claude Code makes it: PreToolUse, then, unless that denied it, PostToolUse
    /// once it went through (which confirms the provisional claim). Returns the PreToolUse answer.
    fn write(&self, session: &str, tool: &str, file: &str) -> Output {
        let input = json!({"file_path": file, "content": "x"});
        let id = format!("toolu_{file}");
        let pre = self.claude(
            "harness-pre-tool-use",
            session,
            "PreToolUse",
            json!({"tool_name": tool, "tool_use_id": id, "tool_input": input}),
        );
        if !stdout(&pre).contains("\"deny\"") {
            let post = self.claude(
                "harness-post-tool-use",
                session,
                "PostToolUse",
                json!({"tool_name": tool, "tool_use_id": id, "tool_input": input,
                       "tool_response": {"filePath": file}}),
            );
            assert!(post.status.success(), "{}", stderr(&post));
        }
        pre
    }

    fn bash(&self, session: &str, command: &str) -> Output {
        self.claude(
            "harness-post-tool-use",
            session,
            "PostToolUse",
            json!({"tool_name": "Bash", "tool_use_id": "toolu_bash",
                   "tool_input": {"command": command}, "tool_response": {"stdout": ""}}),
        )
    }

    fn end(&self, session: &str) -> Output {
        self.claude(
            "harness-session-end",
            session,
            "SessionEnd",
            json!({"reason": "other"}),
        )
    }

    fn log(&self) -> Vec<(String, String, String, Option<String>)> {
        self.env
            .db()
            .prepare("SELECT path, session_id, action, other FROM lock_log ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

fn allowed(out: &Output) {
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "expected no answer, got {}",
        stdout(out)
    );
    assert!(out.stderr.is_empty(), "{}", stderr(out));
}

/// The deny reason, after checking that both clients' deny forms are there.
fn denied(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr(out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not denied: {}", stdout(out)));
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny", "{v}");
    assert_eq!(v["decision"], "block", "{v}");
    let reason = v["reason"].as_str().unwrap().to_owned();
    assert_eq!(
        v["hookSpecificOutput"]["permissionDecisionReason"],
        reason.as_str()
    );
    reason
}

fn context(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no context: {}", stdout(out)));
    v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_second_agent_is_denied_a_file_the_first_is_editing_with_a_reason_that_helps() {
    let p = project("locks-deny");
    let file = p.path("src/main.rs");
    allowed(&p.write(A, "Edit", &file));
    let reason = denied(&p.write(B, "Write", &file));
    for part in [
        file.as_str(),
        "claude session aaaaaaaa",
        &format!("in {}", p.root),
        "last wrote it 0s ago",
        "lapses in 14m",
        "work on something else",
        &format!("harness locks release {file}"),
    ] {
        assert!(reason.contains(part), "{part:?} missing from: {reason}");
    }
    // Reads need no claim; the holder re-enters; other files are free.
    allowed(&p.claude(
        "harness-pre-tool-use",
        B,
        "PreToolUse",
        json!({"tool_name": "Read", "tool_use_id": "r", "tool_input": {"file_path": file}}),
    ));
    allowed(&p.write(A, "Write", &file));
    allowed(&p.write(B, "Write", &p.path("src/other.rs")));
    // The deny is on record with the event.
    let decision: String = p
        .env
        .db()
        .query_row(
            "SELECT decision FROM events WHERE session_id = ?1 AND decision IS NOT NULL",
            [B],
            |r| r.get(0),
        )
        .unwrap();
    assert!(decision.starts_with("deny: "), "{decision}");
}

#[test]
fn claims_are_released_at_session_end() {
    let p = project("locks-end");
    let file = p.path("a.rs");
    allowed(&p.write(A, "Edit", &file));
    denied(&p.write(B, "Edit", &file));
    allowed(&p.end(A));
    allowed(&p.write(B, "Edit", &file));
    let actions: Vec<(String, String)> = p.log().into_iter().map(|(_, s, a, _)| (s, a)).collect();
    assert_eq!(
        actions,
        [
            (A.into(), "grant".into()),
            (B.into(), "deny".into()),
            (A.into(), "release".into()),
            (B.into(), "grant".into()),
        ]
    );
}

#[test]
fn claims_are_released_at_stop_when_configured() {
    let p = project("locks-stop");
    let file = p.path("a.rs");
    allowed(&p.write(A, "Edit", &file));
    let stop = json!({"stop_hook_active": false, "last_assistant_message": "done"});
    allowed(&p.claude("harness-stop", A, "Stop", stop.clone()));
    denied(&p.write(B, "Edit", &file));
    p.env.config(r#"{"locks": {"release_on_stop": true}}"#);
    allowed(&p.claude("harness-stop", A, "Stop", stop));
    allowed(&p.write(B, "Edit", &file));
}

#[test]
fn a_holder_whose_process_exited_loses_its_claims() {
    let p = project("locks-gone");
    let file = p.path("a.rs");
    // SessionStart through `timeout`, a process that exits right after the hook: it is the
    // client the harness remembers for A.
    let start = json!({"session_id": A, "transcript_path": "/t", "cwd": p.root,
                       "hook_event_name": "SessionStart", "source": "startup"});
    let out = p
        .env
        .apply(&mut assert_cmd::Command::new("timeout"))
        .arg("30")
        .arg(support::bin("harness-session-start"))
        .write_stdin(start.to_string())
        .output()
        .unwrap();
    allowed(&out);
    allowed(&p.write(A, "Edit", &file));
    allowed(&p.write(B, "Edit", &file));
    assert!(
        p.log()
            .iter()
            .any(|(_, s, a, o)| s == B && a == "orphan" && o.as_deref() == Some(A))
    );
}

#[test]
fn a_lapsed_claim_is_free_and_a_bounded_wait_outlasts_a_lapse() {
    let p = project("locks-ttl");
    p.env.config(r#"{"locks": {"ttl_secs": 1}}"#);
    let file = p.path("a.rs");
    allowed(&p.write(A, "Edit", &file));
    denied(&p.write(B, "Edit", &file));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    allowed(&p.write(B, "Edit", &file));
    assert!(p.log().iter().any(|(_, s, a, _)| s == B && a == "lapse"));
    // For people, the take-over is one row, not a take-over and then a "taken".
    let out = p
        .env
        .cmd("harness")
        .args(["locks", "--history"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let b_rows: Vec<&str> = text.lines().filter(|l| l.contains(&B[..8])).collect();
    assert_eq!(b_rows.len(), 2, "a denial and one take-over: {text}");
    assert!(b_rows[1].contains("taken over"), "{text}");

    // B holds it now, for one second; with a 3 s wait A gets it once that second is up.
    p.env
        .config(r#"{"locks": {"ttl_secs": 1, "wait_secs": 3}}"#);
    allowed(&p.write(B, "Edit", &file));
    let started = Instant::now();
    allowed(&p.write(A, "Edit", &file));
    let waited = started.elapsed().as_millis();
    assert!((700..3000).contains(&waited), "waited {waited} ms");
    // The event keeps the decision given after the wait, not the wait itself.
    let decision: String = p
        .env
        .db()
        .query_row(
            "SELECT decision FROM events WHERE session_id = ?1 AND decision IS NOT NULL \
             ORDER BY id DESC LIMIT 1",
            [A],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(decision, "allowed after the wait");
}

#[test]
fn spellings_and_symlinks_of_one_file_are_one_claim() {
    let p = project("locks-spell");
    let real = p.path("src/lib.rs");
    std::fs::write(&real, "").unwrap();
    std::os::unix::fs::symlink(p.path("src"), p.path("alias")).unwrap();
    allowed(&p.write(A, "Edit", &real));
    denied(&p.write(B, "Edit", &p.path("src/../src/./lib.rs")));
    denied(&p.write(B, "Write", &p.path("alias/lib.rs")));
    // Gemini sends paths relative to its cwd, and reads the top-level decision.
    let gemini = json!({"session_id": B, "transcript_path": "/g", "cwd": p.path("src"),
                        "hook_event_name": "BeforeTool", "timestamp": "2026-11-21T10:36:31.563Z",
                        "tool_name": "replace",
                        "tool_input": {"file_path": "lib.rs", "instruction": "x",
                                       "old_string": "a", "new_string": "b"}});
    let out = p.env.hook("harness-pre-tool-use", gemini.to_string());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "block");
    assert!(v["reason"].as_str().unwrap().contains(&real));
}

#[test]
fn a_failed_lock_check_allows_unless_fail_closed() {
    let p = project("locks-failclosed");
    let file = p.path("a.rs");
    allowed(&p.write(A, "Edit", &file));
    p.env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    let holder = p.env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Fail open: the write goes ahead, the problem is reported.
    let out = p.write(B, "Edit", &file);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    // Fail closed: denied, saying why.
    p.env
        .config(r#"{"store": {"busy_timeout_ms": 100}, "locks": {"fail_closed": true}}"#);
    let out = p.write(B, "Edit", &file);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = v["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("locks.fail_closed is set"), "{reason}");
    assert_eq!(stderr(&out).lines().count(), 1);
    holder.execute_batch("ROLLBACK").unwrap();
    // A panic in the check fails closed too, and open without the setting.
    let panicking = |config: &str| {
        p.env.config(config);
        p.env
            .cmd("harness-pre-tool-use")
            .env("AGENT_HARNESS_TEST_PANIC", "lock-check")
            .write_stdin(
                json!({"session_id": B, "cwd": p.root, "hook_event_name": "PreToolUse",
                       "tool_name": "Edit", "tool_input": {"file_path": file}})
                .to_string(),
            )
            .output()
            .unwrap()
    };
    let out = panicking(r#"{"locks": {"fail_closed": true}}"#);
    let reason = denied(&Output {
        stderr: Vec::new(),
        ..out.clone()
    });
    assert!(reason.contains("internal error"), "{reason}");
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = panicking("{}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn a_shell_write_to_a_held_file_tells_both_agents() {
    let p = project("locks-bash");
    let file = p.path("src/a.rs");
    allowed(&p.write(A, "Edit", &file));
    let mine = context(&p.bash(B, "cd src && echo x > a.rs && cp a.rs b.rs"));
    assert!(mine.contains("collision"), "{mine}");
    assert!(
        mine.contains(&format!("{file} (held by claude session aaaaaaaa")),
        "{mine}"
    );
    assert!(!mine.contains("b.rs"), "b.rs is nobody's: {mine}");
    // A hears about it on its next hook that can carry context, once; not in a subagent of A's,
    // whose context ends with it.
    allowed(&p.claude(
        "harness-pre-tool-use",
        A,
        "PreToolUse",
        json!({"tool_name": "Edit", "tool_use_id": "toolu_sub", "agent_id": "a1b2c3",
               "agent_type": "Explore", "tool_input": {"file_path": p.path("src/e.rs")}}),
    ));
    let theirs = context(&p.write(A, "Edit", &p.path("src/c.rs")));
    assert!(
        theirs.contains("claude session bbbbbbbb ran a shell command that wrote"),
        "{theirs}"
    );
    allowed(&p.write(A, "Edit", &p.path("src/d.rs")));
    // A shell write to a free file, or one's own, says nothing.
    allowed(&p.bash(A, "echo y > src/a.rs"));
    allowed(&p.bash(B, "echo y > src/free.rs"));
}

#[test]
fn harness_locks_lists_and_releases() {
    let p = project("locks-cli");
    allowed(&p.write(A, "Edit", &p.path("one.rs")));
    allowed(&p.write(A, "Edit", &p.path("two.rs")));
    allowed(&p.write(B, "Edit", &p.path("three.rs")));
    let run = |args: &[&str]| {
        let out = p
            .env
            .cmd("harness")
            .args(args)
            .current_dir(&p.root)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let list = run(&["locks"]);
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.contains("aaaaaaaa  claude  live"), "{list}");
    let rows: Vec<Value> = run(&["locks", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["seconds_left"].as_i64().unwrap() > 800)
    );

    assert!(run(&["locks", "release", "one.rs"]).contains("Released"));
    allowed(&p.write(B, "Edit", &p.path("one.rs")));
    assert!(run(&["locks", "release", "--session", "aaaa"]).contains("Released 1 claim"));
    allowed(&p.write(B, "Edit", &p.path("two.rs")));
    allowed(&p.end(B));
    assert!(run(&["locks", "release", "--stale"]).contains("Released 0 stale"));
    assert!(run(&["locks"]).contains("No file is claimed"));
    let out = p
        .env
        .cmd("harness")
        .args(["locks", "release"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "one of PATH, --session, --stale is required"
    );
}

#[test]
fn sixteen_processes_for_two_agents_never_hold_one_path_both() {
    let p = project("locks-race");
    p.env.config(r#"{"locks": {"release_on_stop": true}}"#);
    const PROCS: usize = 16;
    const ROUNDS: usize = 60;
    const PATHS: usize = 50;
    let outcomes: Vec<Vec<(String, bool)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PROCS)
            .map(|t| {
                let p = &p;
                s.spawn(move || {
                    let session = if t % 2 == 0 { A } else { B };
                    let mut seen = Vec::new();
                    for i in 0..ROUNDS {
                        if i % 10 == 9 {
                            let stop = json!({"stop_hook_active": false});
                            let out = p.claude("harness-stop", session, "Stop", stop);
                            assert!(out.stderr.is_empty(), "{}", stderr(&out));
                            continue;
                        }
                        let n = (t * 7919 + i * 104_729) % PATHS;
                        let out = p.write(session, "Edit", &p.path(&format!("f{n}.rs")));
                        assert!(out.stderr.is_empty(), "{}", stderr(&out));
                        seen.push((format!("f{n}.rs"), out.stdout.is_empty()));
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Replay the log in commit order: a grant only ever goes to a free path (or its holder).
    let mut holder: HashMap<String, String> = HashMap::new();
    let (mut grants, mut denies) = (0, 0);
    for (path, session, action, other) in p.log() {
        match action.as_str() {
            "grant" => {
                assert!(
                    holder.get(&path).is_none_or(|h| *h == session),
                    "{path} granted to {session} while {:?} held it",
                    holder.get(&path)
                );
                holder.insert(path, session);
                grants += 1;
            }
            // A provisional claim freed because its write never happened is a release too.
            "release" | "refused" => {
                assert_eq!(holder.remove(&path).as_deref(), Some(session.as_str()));
            }
            "deny" => {
                assert_eq!(
                    holder.get(&path),
                    other.as_ref(),
                    "denied by the real holder"
                );
                assert_ne!(other.as_deref(), Some(session.as_str()));
                denies += 1;
            }
            other => panic!("no lapse or orphan expected here, got {other}"),
        }
    }
    // The table agrees with the replay, and nothing was lost.
    let table: HashMap<String, String> = p
        .env
        .db()
        .prepare("SELECT path, session_id FROM claims")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(table, holder);
    let attempts: usize = outcomes.iter().map(Vec::len).sum();
    let refused = outcomes.iter().flatten().filter(|(_, ok)| !ok).count();
    assert_eq!(refused, denies, "every refused write is in the log");
    assert!(
        grants > 0 && denies > 0,
        "the race was a race: {grants} grants, {denies} denies"
    );
    // Every Stop and PreToolUse, and the PostToolUse of each write that went through.
    assert_eq!(
        p.env.count("SELECT count(*) FROM events") as usize,
        PROCS * ROUNDS + attempts - refused,
        "every hook call recorded"
    );
    assert_eq!(attempts, PROCS * (ROUNDS - ROUNDS / 10));
    assert_eq!(p.env.log_text(), "");
}

#[test]
fn a_write_too_large_to_keep_still_meets_the_lock() {
    let p = project("locks-huge");
    let file = p.path("src/big.rs");
    allowed(&p.write(A, "Edit", &file));
    // 6 MiB of content written before the path (key order is the model's), with a decoy
    // "file_path" inside the content and an object of the same shape nested in an extra field.
    let content = format!("\"file_path\": \"/elsewhere\"\n{}", "y".repeat(6 << 20));
    let huge = json!({
        "session_id": B,
        "transcript_path": "/tmp/b.jsonl",
        "cwd": p.root,
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "extra": {"tool_input": {"file_path": "/decoy"}},
        "tool_input": {"content": content, "file_path": file},
        "tool_use_id": "toolu_huge",
    })
    .to_string();
    assert!(huge.len() > 4 << 20);
    let reason = denied(&p.env.hook("harness-pre-tool-use", huge.clone()));
    assert!(reason.contains(&file), "{reason}");
    // Recorded as truncated, with the fields it was judged on.
    let (tool, truncated, len): (String, bool, i64) = p
        .env
        .db()
        .query_row(
            "SELECT tool_name, truncated, length(payload) FROM events WHERE session_id = ?1",
            [B],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((tool.as_str(), truncated), ("Write", true));
    assert!(len < 100 * 1024, "stored {len} bytes");
    // Once A is gone, the same huge write goes through (and takes the claim).
    assert!(p.end(A).stdout.is_empty());
    allowed(&p.env.hook("harness-pre-tool-use", huge));
    assert!(denied(&p.write(A, "Edit", &file)).contains("claude session bbbbbbbb"));
}

#[test]
fn a_holders_next_write_attempt_moments_after_its_last_write_leaves_the_claim_as_it_is() {
    let p = project("refresh");
    let file = p.path("src/lib.rs");
    std::fs::write(&file, "x").unwrap();
    let claim = || -> (i64, i64, bool) {
        p.env
            .db()
            .query_row(
                "SELECT touched_ms, expires_ms, provisional FROM claims WHERE path = ?1",
                [&file],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    allowed(&p.write(A, "Write", &file));
    let confirmed = claim();
    assert!(!confirmed.2, "the write confirmed the claim");
    // The next attempt (PreToolUse alone): nothing to write, the claim is as the write left it.
    let pre = p.claude(
        "harness-pre-tool-use",
        A,
        "PreToolUse",
        json!({"tool_name": "Edit", "tool_use_id": "toolu_next",
               "tool_input": {"file_path": &file, "old_string": "x", "new_string": "y"}}),
    );
    allowed(&pre);
    assert_eq!(claim(), confirmed);
    // Another agent is still denied, and the write itself refreshes.
    denied(&p.write(B, "Write", &file));
    std::thread::sleep(std::time::Duration::from_millis(5));
    allowed(&p.write(A, "Write", &file));
    let again = claim();
    assert!(again.0 > confirmed.0 && again.1 > confirmed.1 && !again.2);
}
