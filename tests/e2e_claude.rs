//! End-to-end: the real `claude` (2.1.197, from the npm registry) with the harness installed the
//! way a user installs it, talking to a mock Anthropic API on 127.0.0.1.

mod support;

use agent_harness::store::query::{self, EventFilter, EventRow};
use serde_json::{Value, json};
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;

fn names(rows: &[EventRow]) -> Vec<&str> {
    rows.iter().map(|r| r.event.as_str()).collect()
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort();
    v
}

fn payload(row: &EventRow) -> Value {
    serde_json::from_str(&row.payload).unwrap()
}

#[test]
fn a_working_session_and_its_compaction_are_recorded_completely() {
    support::clients::each_claude(a_working_session_and_its_compaction_are_recorded_completely_on);
}

fn a_working_session_and_its_compaction_are_recorded_completely_on(
    claude: &support::clients::Claude,
) {
    let mock = AnthropicMock::start(vec![]);
    let c = ClaudeEnv::new("e2e-session", claude, mock.url());
    std::fs::write(c.project.join("hello.txt"), "hi\n").unwrap();
    let commands = c.project.join(".claude/commands");
    std::fs::create_dir_all(&commands).unwrap();
    std::fs::write(commands.join("do-things.md"), "Do the things: $ARGUMENTS\n").unwrap();
    let p = |f: &str| c.project.join(f).to_string_lossy().into_owned();
    mock.push(vec![
        Turn::tool("Read", json!({"file_path": p("hello.txt")})),
        Turn::tool(
            "Edit",
            json!({"file_path": p("hello.txt"), "old_string": "hi", "new_string": "hello"}),
        ),
        Turn::tool(
            "Write",
            json!({"file_path": p("notes.txt"), "content": "notes\n"}),
        ),
        Turn::tool(
            "Bash",
            json!({"command": "false", "description": "fail on purpose"}),
        ),
        Turn::tool(
            "Agent",
            json!({"description": "look around", "prompt": "List the files",
                   "subagent_type": "general-purpose"}),
        ),
        // The subagent's only turn, then the main agent's last.
        Turn::text("sub agent reply"),
        Turn::text("All done."),
    ]);

    let run = c.run("/do-things quickly", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let session = run.session_id().expect("a session id");
    assert_eq!(mock.remaining(), 0, "the model saw every scripted turn");
    assert_eq!(std::fs::read_to_string(p("hello.txt")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(p("notes.txt")).unwrap(), "notes\n");
    // The failing command reached the model as an error result.
    let failed = mock.message_requests().iter().any(|body| {
        body["messages"].as_array().into_iter().flatten().any(|m| {
            m["content"].as_array().into_iter().flatten().any(|b| {
                b["type"] == "tool_result"
                    && b["is_error"] == true
                    && b["content"].to_string().contains("Exit code 1")
            })
        })
    });
    assert!(failed, "the Bash failure reached the model");

    // /compact on --resume.
    mock.push(vec![Turn::text(
        "Summary: hello.txt was edited, notes.txt written.",
    )]);
    let run2 = c.run("/compact keep the file names", &["--resume", &session]);
    assert_eq!(run2.code, Some(0), "{}", run2.describe());

    // Async hooks (SubagentStop, PostCompact) and even SessionEnd may land after `claude -p`
    // exited: wait for what both runs must have left.
    let count = |rows: &[EventRow], e: &str| rows.iter().filter(|r| r.event == e).count();
    let rows = c.events_when(|rows| {
        count(rows, "SessionEnd") == 2
            && count(rows, "PostCompact") == 1
            && count(rows, "SubagentStart") == 1
            && count(rows, "SubagentStop") >= 2
            && count(rows, "PostToolUseFailure") == 1
    });
    assert!(
        rows.iter()
            .all(|r| r.session_id.as_deref() == Some(session.as_str()))
    );
    assert!(rows.iter().all(|r| r.agent == "claude"));
    let got = names(&rows);
    // What matters, not the client's incidental order or counts: 2.1.332 sends
    // UserPromptSubmit before UserPromptExpansion, two SubagentStop on /compact, and a synthetic
    // UserPromptSubmit and a second Stop after the (now background) agent.
    for (event, n) in [
        ("SessionStart", 3),
        ("UserPromptExpansion", 1),
        ("PreToolUse", 5),
        ("PostToolUse", 4),
        ("PostToolUseFailure", 1),
        ("SubagentStart", 1),
        ("PreCompact", 1),
        ("PostCompact", 1),
        ("SessionEnd", 2),
    ] {
        // On a miss, what the hooks logged and what waits in the spool say why.
        assert_eq!(
            count(&rows, event),
            n,
            "{event} in {got:?}; log: {}; spool: {:?}",
            c.env.log_text(),
            agent_harness::store::spool::waiting(&c.env.db)
        );
    }
    assert!(count(&rows, "Stop") >= 1, "{got:?}");
    assert!(count(&rows, "SubagentStop") >= 2, "{got:?}");
    // The tool calls of the main agent, in the order they ran.
    let tools: Vec<&str> = got
        .iter()
        .copied()
        .filter(|e| e.starts_with("PreToolUse") || e.starts_with("PostToolUse"))
        .collect();
    assert_eq!(
        tools,
        [
            "PreToolUse",
            "PostToolUse",
            "PreToolUse",
            "PostToolUse",
            "PreToolUse",
            "PostToolUse",
            "PreToolUse",
            "PostToolUseFailure",
            "PreToolUse",
            "PostToolUse"
        ],
        "{got:?}"
    );
    // Each run opens with its SessionStart and its first SessionEnd comes before the resume.
    assert_eq!(got[0], "SessionStart");
    let first_end = got.iter().position(|e| *e == "SessionEnd").unwrap();
    let resume = rows
        .iter()
        .position(|r| r.event == "SessionStart" && payload(r)["source"] == "resume")
        .unwrap();
    assert!(first_end < resume, "{got:?}");
    assert!(
        got[resume..].contains(&"PreCompact") && !got[..resume].contains(&"PreCompact"),
        "{got:?}"
    );
    // The prompts: the user's one, and on a release with background agents, the client's own
    // report of it (recorded, and marked for what it is).
    let prompts: Vec<String> = rows
        .iter()
        .filter(|r| r.event == "UserPromptSubmit")
        .map(|r| payload(r)["prompt"].as_str().unwrap_or("").to_owned())
        .collect();
    let (synthetic, typed): (Vec<&String>, Vec<&String>) = prompts
        .iter()
        .partition(|p| agent_harness::event::is_synthetic_prompt(p));
    assert_eq!(typed, ["/do-things quickly"], "{prompts:?}");
    let agent_post = rows
        .iter()
        .find(|r| r.event == "PostToolUse" && r.tool_name.as_deref() == Some("Agent"))
        .map(payload)
        .unwrap();
    let launched_async = agent_post["tool_response"]["status"] == "async_launched";
    assert_eq!(
        synthetic.len(),
        usize::from(launched_async),
        "a background agent's report arrives as one synthetic prompt: {prompts:?}"
    );
    if c.version == "2.1.332" {
        assert!(
            launched_async,
            "2.1.332 runs the Agent tool in the background"
        );
    }
    let of = |event: &str| -> Vec<Value> {
        rows.iter()
            .filter(|r| r.event == event)
            .map(payload)
            .collect()
    };
    let starts: Vec<String> = of("SessionStart")
        .iter()
        .map(|p| p["source"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(starts, ["startup", "resume", "compact"]);
    let expansion = &of("UserPromptExpansion")[0];
    assert_eq!(expansion["command_name"], "do-things");
    assert_eq!(expansion["command_args"], "quickly");
    assert_eq!(
        of("PreCompact")[0]["custom_instructions"],
        "keep the file names"
    );
    assert_eq!(of("PostCompact")[0]["trigger"], "manual");
    let subagent_types: Vec<&str> = rows
        .iter()
        .filter(|r| r.event == "SubagentStop")
        .map(|r| {
            if payload(r)["agent_type"] == "" {
                "compaction"
            } else {
                "general-purpose"
            }
        })
        .collect();
    // One general-purpose agent; /compact's own agent stops once on 2.1.197, twice on 2.1.332.
    let mut kinds = sorted(subagent_types);
    kinds.dedup();
    assert_eq!(kinds, ["compaction", "general-purpose"]);

    let conn = c.env.db();
    let s = query::session(&conn, &session).unwrap().unwrap();
    assert_eq!(s.agent, "claude");
    assert_eq!(s.cwd.as_deref(), c.project.to_str());
    assert_eq!(s.project_root.as_deref(), c.project.to_str());
    assert!(
        s.transcript_path
            .as_deref()
            .unwrap()
            .ends_with(&format!("{session}.jsonl"))
    );
    assert_eq!(s.source.as_deref(), Some("compact"));
    assert_eq!(s.end_reason.as_deref(), Some("other"));
    assert!(s.client.is_some(), "the claude process was remembered");
    assert_eq!(s.event_count, rows.len() as i64);

    let calls = query::tool_calls(&conn, &session).unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = calls
        .iter()
        .map(|t| {
            (
                t.tool_name.as_str(),
                t.outcome.as_str(),
                t.file_path.as_deref(),
            )
        })
        .collect();
    let (hello, notes) = (p("hello.txt"), p("notes.txt"));
    assert_eq!(
        summary,
        [
            ("Read", "success", Some(hello.as_str())),
            ("Edit", "success", Some(hello.as_str())),
            ("Write", "success", Some(notes.as_str())),
            ("Bash", "failure", None),
            ("Agent", "success", None),
        ]
    );
    assert!(
        calls
            .iter()
            .all(|t| t.duration_ms.is_some() && t.started_ms.is_some())
    );
    assert_eq!(calls[3].error.as_deref(), Some("Exit code 1"));
    assert_eq!(c.env.log_text(), "", "no hook reported a problem");
}

#[test]
fn a_429_from_the_model_is_recorded_as_a_rate_limit_stop_failure() {
    support::clients::each_claude(a_429_from_the_model_is_recorded_as_a_rate_limit_stop_failure_on);
}

fn a_429_from_the_model_is_recorded_as_a_rate_limit_stop_failure_on(
    claude: &support::clients::Claude,
) {
    let mock = AnthropicMock::start(vec![Turn::rate_limited()]);
    let c = ClaudeEnv::new("e2e-429", claude, mock.url());
    let run = c.run("hello", &[]);
    assert_eq!(
        run.code,
        Some(1),
        "claude -p exits 1 on an API error: {}",
        run.describe()
    );
    let rows = c.events_when(|rows| {
        ["SessionEnd", "StopFailure"]
            .iter()
            .all(|e| rows.iter().any(|r| r.event == *e))
    });
    let got = names(&rows);
    assert_eq!(
        sorted(got.clone()),
        [
            "SessionEnd",
            "SessionStart",
            "StopFailure",
            "UserPromptSubmit"
        ],
        "{got:?}"
    );
    let failure = rows.iter().find(|r| r.event == "StopFailure").unwrap();
    let p = payload(failure);
    assert_eq!(p["error"], "rate_limit");
    assert!(
        p["last_assistant_message"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{p}"
    );
    assert_eq!(c.env.log_text(), "");
}

#[test]
fn two_sessions_at_once_in_one_repository_are_both_recorded_completely() {
    support::clients::each_claude(
        two_sessions_at_once_in_one_repository_are_both_recorded_completely_on,
    );
}

fn two_sessions_at_once_in_one_repository_are_both_recorded_completely_on(
    claude: &support::clients::Claude,
) {
    const CALLS: usize = 6;
    let script = |tag: &str, project: &std::path::Path| {
        let mut turns: Vec<Turn> = (0..CALLS)
            .map(|i| {
                let file = project.join(format!("{tag}-{i}.txt"));
                Turn::tool(
                    "Write",
                    json!({"file_path": file, "content": format!("{tag} {i}\n")}),
                )
            })
            .collect();
        turns.push(Turn::text("Wrote them all."));
        turns
    };
    let c = ClaudeEnv::new("e2e-two", claude, String::new());
    let mock_a = AnthropicMock::start(script("a", &c.project));
    let mock_b = AnthropicMock::start(script("b", &c.project));
    let (run_a, run_b) = std::thread::scope(|s| {
        let a = s.spawn(|| c.run_against(&mock_a.url(), "write the a files", &[]));
        let b = s.spawn(|| c.run_against(&mock_b.url(), "write the b files", &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(run_a.code, Some(0), "{}", run_a.describe());
    assert_eq!(run_b.code, Some(0), "{}", run_b.describe());
    c.events_when(|rows| rows.iter().filter(|r| r.event == "SessionEnd").count() == 2);
    let conn = c.env.db();
    for run in [&run_a, &run_b] {
        let session = run.session_id().unwrap();
        let rows = query::events(
            &conn,
            &EventFilter {
                sessions: Some(vec![session.clone()]),
                ..EventFilter::default()
            },
            1000,
        )
        .unwrap();
        let mut want = vec!["SessionStart", "UserPromptSubmit"];
        for _ in 0..CALLS {
            want.extend(["PreToolUse", "PostToolUse"]);
        }
        want.extend(["Stop", "SessionEnd"]);
        assert_eq!(names(&rows), want);
        let calls = query::tool_calls(&conn, &session).unwrap();
        assert_eq!(calls.len(), CALLS);
        assert!(calls.iter().all(|t| t.outcome == "success"));
    }
    assert_eq!(query::sessions(&conn, 10).unwrap().len(), 2);
    for tag in ["a", "b"] {
        for i in 0..CALLS {
            assert!(c.project.join(format!("{tag}-{i}.txt")).exists());
        }
    }
    assert_eq!(c.env.log_text(), "");
}

#[test]
fn a_slash_commands_shell_step_into_a_held_file_is_refused_before_it_runs() {
    support::clients::each_claude(|claude| {
        // Only releases that send PreSkillShellCommand can stop the step; 2.1.197 must still
        // run the session with the event registered (an unknown event name is harmless there).
        let mock = AnthropicMock::start(vec![Turn::text("Done.")]);
        let c = ClaudeEnv::new("e2e-skill-shell", claude, mock.url());
        let held = c.project.join("held.txt");
        std::fs::write(&held, "original\n").unwrap();
        let commands = c.project.join(".claude/commands");
        std::fs::create_dir_all(&commands).unwrap();
        std::fs::write(
            commands.join("stamp.md"),
            "Stamp it: !`echo stamped > held.txt`\n",
        )
        .unwrap();
        // Another live agent holds the file.
        let other = c.env.hook(
            "harness-pre-tool-use",
            json!({"hook_event_name": "BeforeTool", "session_id": "gemini-holder",
                   "timestamp": "2026-01-01T00:00:00Z", "cwd": c.project,
                   "tool_name": "write_file",
                   "tool_input": {"file_path": held, "content": "x"}})
            .to_string(),
        );
        assert!(other.status.success());
        let run = c.run("/stamp", &[]);
        let rows = c.events_when(|rows| rows.iter().any(|r| r.event == "SessionEnd"));
        let got = names(&rows);
        assert!(got.contains(&"SessionStart"), "{got:?} {}", run.describe());
        if claude.at_least("2.1.332") {
            let step = rows
                .iter()
                .find(|r| r.event == "PreSkillShellCommand")
                .unwrap_or_else(|| panic!("no PreSkillShellCommand in {got:?}"));
            let p = payload(step);
            assert_eq!(p["tool_name"], "Bash");
            assert_eq!(p["tool_input"]["command"], "echo stamped > held.txt");
            assert_eq!(p["command_name"], "stamp");
            assert_eq!(
                std::fs::read_to_string(&held).unwrap(),
                "original\n",
                "the step never ran: {}",
                run.describe()
            );
        }
        assert_eq!(c.env.log_text(), "", "no hook reported a problem");
    });
}
