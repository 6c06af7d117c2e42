//! Recorded payloads piped through the built hook binaries: exit code, stdout and the rows in the
//! store.

mod support;

use agent_harness::store::query::{self, EventFilter, EventRow};
use serde_json::Value;
use support::{Env, binary_for, fixture, fixtures, stderr};

const SESSION: &str = "27bffab0-4151-4e78-ad34-7c89b0e5aea3";

fn event_name(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["hook_event_name"].as_str().unwrap().to_owned()
}

/// Runs one payload through the binary its event is wired to and checks the quiet success.
fn record(env: &Env, bytes: &[u8]) {
    let out = env.hook(binary_for(&event_name(bytes)), bytes.to_vec());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(&out));
}

#[test]
fn every_recorded_fixture_is_recorded_by_its_binary() {
    let sets = [
        ("claude-code-2.1.197", "claude"),
        ("claude-code-2.1.197-e2e", "claude"),
        ("claude-code-2.1.332", "claude"),
        ("gemini-cli-0.61.0", "gemini"),
        ("gemini-cli-0.61.0-e2e", "gemini"),
    ];
    let mut seen = 0;
    for (dir, want_agent) in sets {
        for (name, bytes) in fixtures(dir)
            .into_iter()
            .filter(|(n, _)| !n.starts_with("statusline"))
        {
            let name = format!("{dir}/{name}");
            let env = Env::new("fixture");
            record(&env, &bytes);
            seen += 1;
            let payload: Value = serde_json::from_slice(&bytes).unwrap();
            let conn = env.db();
            let rows = query::events(&conn, &EventFilter::default(), 10).unwrap();
            assert_eq!(rows.len(), 1, "{name}");
            let EventRow {
                event,
                session_id,
                agent,
                tool_name,
                tool_use_id,
                file_path,
                payload: stored,
                ..
            } = rows.into_iter().next().unwrap();
            let session = session_id.unwrap();
            assert_eq!(event, payload["hook_event_name"], "{name}");
            assert_eq!(session, payload["session_id"], "{name}");
            assert_eq!(agent, want_agent, "{name}");
            // The tool and file columns belong to tool calls: PermissionRequest and
            // PreSkillShellCommand (2.1.332) name a tool but are no call of one.
            let is_call = matches!(
                event.as_str(),
                "PreToolUse" | "PostToolUse" | "PostToolUseFailure" | "BeforeTool" | "AfterTool"
            );
            let want = |k: &str| payload[k].as_str().filter(|_| is_call);
            assert_eq!(tool_name.as_deref(), want("tool_name"), "{name}");
            assert_eq!(
                tool_use_id.as_deref(),
                payload["tool_use_id"].as_str(),
                "{name}"
            );
            // The fixtures hold no secrets, so the stored payload is the payload.
            assert_eq!(
                serde_json::from_str::<Value>(&stored).unwrap(),
                payload,
                "{name}"
            );
            // File paths are stored absolute: Gemini's relative ones resolved against its cwd.
            let want_file = want("tool_name")
                .and(payload["tool_input"]["file_path"].as_str())
                .map(|f| {
                    std::path::Path::new(payload["cwd"].as_str().unwrap())
                        .join(f)
                        .to_string_lossy()
                        .into_owned()
                });
            assert_eq!(file_path, want_file, "{name}");
            let s = query::session(&conn, &session).unwrap().unwrap();
            assert_eq!(s.cwd.as_deref(), payload["cwd"].as_str(), "{name}");
            assert_eq!(
                s.transcript_path.as_deref(),
                payload["transcript_path"].as_str(),
                "{name}"
            );
            assert_eq!((s.agent.as_str(), s.event_count), (want_agent, 1), "{name}");
        }
    }
    assert!(seen >= 40, "only {seen} fixtures");
}

/// The order a real session produced these events in.
const SESSION_ORDER: &[&str] = &[
    "claude-code-2.1.197/SessionStart-startup.json",
    "claude-code-2.1.197/UserPromptSubmit.json",
    "claude-code-2.1.197/PreToolUse-Read.json",
    "claude-code-2.1.197/PostToolUse-Read.json",
    "claude-code-2.1.197/PreToolUse-Edit.json",
    "claude-code-2.1.197/PostToolUse-Edit.json",
    "claude-code-2.1.197/PreToolUse-Bash.json",
    "claude-code-2.1.197/PostToolUse-Bash.json",
    "rebuilt/PreToolUse-Bash-fails.json",
    "rebuilt/PostToolUseFailure-Bash.json",
    "claude-code-2.1.197/PreToolUse-Write.json",
    "claude-code-2.1.197/PostToolUse-Write.json",
    "claude-code-2.1.197/PreToolUse-Agent.json",
    "claude-code-2.1.197/SubagentStart.json",
    "claude-code-2.1.197/SubagentStop.json",
    "claude-code-2.1.197/PostToolUse-Agent.json",
    "claude-code-2.1.197/Stop.json",
    "claude-code-2.1.197/SessionStart-resume.json",
    "claude-code-2.1.197/PreCompact-manual.json",
    "claude-code-2.1.197/SessionStart-compact.json",
    "claude-code-2.1.197/PostCompact-manual.json",
    "rebuilt/Notification.json",
    "claude-code-2.1.197/SessionEnd.json",
];

#[test]
fn a_whole_session_gives_sessions_events_and_joined_tool_calls() {
    let env = Env::new("session");
    // This checks what is recorded, quietly: the hand-backs memory gives at the resume and the
    // compact restart are tests/memory.rs's business.
    env.config(r#"{"memory": {"enabled": false}}"#);
    for rel in SESSION_ORDER {
        record(&env, &fixture(rel));
    }
    let conn = env.db();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE session_id = ?1",
            [SESSION],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, SESSION_ORDER.len() as i64);

    let s = query::session(&conn, SESSION).unwrap().unwrap();
    assert_eq!(
        s.model.as_deref(),
        Some("claude-opus-4-8"),
        "the model learned at the compact restart"
    );
    assert_eq!(s.source.as_deref(), Some("compact"));
    assert!(s.ended_ms.is_some());
    assert_eq!(s.end_reason.as_deref(), Some("other"));
    assert_eq!(s.event_count, SESSION_ORDER.len() as i64);
    let last = query::events(&conn, &EventFilter::default(), 1).unwrap();
    assert_eq!(s.last_seen_ms, last[0].ts_ms);

    let calls = query::tool_calls(&conn, SESSION).unwrap();
    let summary: Vec<(&str, &str, Option<i64>, &str)> = calls
        .iter()
        .map(|c| {
            (
                c.call_key.as_str(),
                c.tool_name.as_str(),
                c.duration_ms,
                c.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("toolu_msg_0", "Read", Some(2), "success"),
            ("toolu_msg_1", "Edit", Some(4), "success"),
            ("toolu_msg_2", "Bash", Some(34), "success"),
            ("toolu_msg_3", "Bash", Some(46), "failure"),
            ("toolu_msg_4", "Write", Some(3), "success"),
            ("toolu_msg_7", "Agent", Some(71), "success"),
        ]
    );
    assert_eq!(
        calls[1].file_path.as_deref(),
        Some("/home/dev/project/hello.txt")
    );
    assert_eq!(calls[3].error.as_deref(), Some("Exit code 1"));
}

#[test]
fn gemini_payloads_are_recorded_as_a_gemini_agent() {
    let env = Env::new("gemini");
    for name in [
        "SessionStart-startup.json",
        "BeforeAgent.json",
        "BeforeTool-write_file.json",
        "AfterTool-write_file.json",
        "BeforeTool-replace.json",
        "AfterAgent.json",
        "SessionEnd-exit.json",
    ] {
        record(&env, &fixture(&format!("gemini-cli-0.61.0/{name}")));
    }
    let conn = env.db();
    let (agent, reason): (String, String) = conn
        .query_row("SELECT agent, end_reason FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((agent.as_str(), reason.as_str()), ("gemini", "exit"));
    let agents: Vec<String> = conn
        .prepare("SELECT DISTINCT agent FROM events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(agents, ["gemini"]);
    // Gemini's relative paths are resolved against its cwd; Before and After join without an id.
    let calls: Vec<(String, String, String)> = conn
        .prepare("SELECT tool_name, file_path, outcome FROM tool_calls ORDER BY started_ms, tool_name DESC")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        calls,
        [
            (
                "write_file".into(),
                "/home/dev/ws/out.txt".into(),
                "success".into()
            ),
            // No AfterTool came for the replace before the session ended.
            (
                "replace".into(),
                "/home/dev/ws/README.md".into(),
                "abandoned".into()
            ),
        ]
    );
}

#[test]
fn a_binary_wired_to_the_wrong_event_records_the_event_it_got() {
    let env = Env::new("wrong-binary");
    let out = env.hook(
        "harness-pre-tool-use",
        fixture("claude-code-2.1.197/Stop.json"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE event = 'Stop'"),
        1
    );
}

#[test]
fn unknown_but_well_formed_events_are_recorded_and_answered_with_nothing() {
    let env = Env::new("unknown");
    let payload = r#"{"session_id":"s-1","cwd":"/tmp","hook_event_name":"CwdChanged","old_cwd":"/a","new_cwd":"/b","future_field":{"x":1}}"#;
    for bin in [
        "harness-notification",
        "harness-stop",
        "harness-session-start",
    ] {
        let out = env.hook(bin, payload);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{bin}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE event = 'CwdChanged'"),
        3
    );
}

#[test]
fn secrets_are_redacted_before_they_are_stored() {
    let env = Env::new("redact");
    let payload = serde_json::json!({
        "session_id": "s-secret", "cwd": "/tmp", "hook_event_name": "PreToolUse",
        "tool_name": "Bash", "tool_use_id": "toolu_s",
        "tool_input": {"command": "ANTHROPIC_API_KEY=sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaaaaaa claude -p hi; \
                                   curl -H 'Authorization: Bearer abcdefghijklmnop' https://x"},
    });
    let prompt = serde_json::json!({
        "session_id": "s-secret", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit",
        "prompt": "use key AIzaSyA1234567890abcdefghijklmnopqrstuv and ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    });
    record(&env, payload.to_string().as_bytes());
    record(&env, prompt.to_string().as_bytes());
    let stored: Vec<String> = env
        .db()
        .prepare("SELECT payload FROM events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let all = stored.join("\n");
    for secret in [
        "sk-ant-api03-aaaa",
        "abcdefghijklmnop",
        "AIzaSyA1234567890",
        "ghp_abcdefghijklmnop",
    ] {
        assert!(!all.contains(secret), "{secret} was stored: {all}");
    }
    assert!(all.contains("[redacted"), "{all}");
    // The store file itself holds no trace either (payload text is the only place it could be).
    let bytes = std::fs::read(&env.db).unwrap();
    let wal = std::fs::read(agent_harness::store::wal_path(&env.db)).unwrap_or_default();
    for blob in [bytes, wal] {
        assert!(!String::from_utf8_lossy(&blob).contains("sk-ant-api03-aaaa"));
    }
}

#[test]
fn a_session_start_remembers_the_client_process() {
    let env = Env::new("client");
    record(
        &env,
        &fixture("claude-code-2.1.197/SessionStart-startup.json"),
    );
    let (pid, start): (Option<i64>, Option<i64>) = env
        .db()
        .query_row("SELECT client_pid, client_start FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // The hook's parent is this test process.
    assert_eq!(pid, Some(std::process::id() as i64));
    assert!(start.unwrap() > 0);
}

#[test]
fn a_stop_while_a_background_agent_works_keeps_the_sessions_files_under_release_on_stop() {
    // Claude Code 2.1.332: the Agent tool returns at launch, the main turn stops while the agent
    // works (`background_tasks`), the agent's SubagentStop and a synthetic prompt follow.
    let env = Env::new("async-agent");
    env.config(r#"{"locks": {"release_on_stop": true}}"#);
    let fx = |n: &str| fixture(&format!("claude-code-2.1.332/{n}.json"));
    for n in [
        "SessionStart-startup",
        "PreToolUse-Write",
        "PostToolUse-Write",
    ] {
        record(&env, &fx(n));
    }
    let claims = || env.count("SELECT count(*) FROM claims");
    assert_eq!(claims(), 1);
    assert_eq!(env.count("SELECT provisional FROM claims"), 0, "confirmed");
    for n in [
        "PreToolUse-Agent",
        "SubagentStart",
        "PostToolUse-Agent-async_launched",
        "Stop-background-agent",
    ] {
        record(&env, &fx(n));
    }
    assert_eq!(claims(), 1, "a subagent of the session still works");
    for n in ["SubagentStop", "UserPromptSubmit-task-notification", "Stop"] {
        record(&env, &fx(n));
    }
    assert_eq!(
        claims(),
        0,
        "the turn after the agent's report ends: released"
    );
    assert_eq!(env.log_text(), "");
}

#[test]
fn a_write_claimed_before_its_permission_check_is_provisional_until_it_is_done() {
    let env = Env::new("provisional");
    let fx = |n: &str| fixture(&format!("claude-code-2.1.332/{n}.json"));
    record(&env, &fx("SessionStart-startup"));
    record(&env, &fx("PreToolUse-Write"));
    assert_eq!(env.count("SELECT provisional FROM claims"), 1);
    // The user refused it: the agent moves on to its next tool without a PostToolUse.
    record(&env, &fx("PreToolUse-Bash"));
    assert_eq!(env.count("SELECT count(*) FROM claims"), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM lock_log WHERE action = 'refused'"),
        1
    );
    // Refused with an event: PermissionDenied frees it at once.
    record(&env, &fx("PreToolUse-Write"));
    let mut denied: Value = serde_json::from_slice(&fx("PreToolUse-Write")).unwrap();
    denied["hook_event_name"] = "PermissionDenied".into();
    denied["reason"] = "the user said no".into();
    record(&env, denied.to_string().as_bytes());
    assert_eq!(env.count("SELECT count(*) FROM claims"), 0);
    // Done: confirmed for the full TTL.
    record(&env, &fx("PreToolUse-Write"));
    record(&env, &fx("PostToolUse-Write"));
    assert_eq!(env.count("SELECT provisional FROM claims"), 0);
    record(&env, &fx("PreToolUse-Bash"));
    assert_eq!(
        env.count("SELECT count(*) FROM claims"),
        1,
        "a done write stays held"
    );
}

/// Whether an ELF executable names a program interpreter (the dynamic loader): what a
/// dynamically linked binary has and a static one has not.
fn names_an_interpreter(path: &std::path::Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(bytes[4], 2, "{} is not a 64-bit ELF", path.display());
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// The ELF file type (`e_type`): 2 for an executable at a fixed address, 3 for a
/// position-independent one (or a shared library).
fn elf_type(path: &std::path::Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[0x10], bytes[0x11]])
}

/// build.rs links every per-event binary statically where the C toolchain allows (on CI's
/// machine it does: the start of a dynamic one was 12% of a PreToolUse call), not
/// position-independent (a static PIE relocated itself at every start: 8% of a call's CPU), and
/// leaves the CLI, which resolves host names, dynamic.
#[cfg(all(target_os = "linux", target_env = "gnu", target_endian = "little"))]
#[test]
fn the_per_event_binaries_are_linked_static_and_the_cli_is_not() {
    let linked_static = env!("AGENT_HARNESS_STATIC_HOOKS") == "1";
    if std::env::var_os("CI").is_some() {
        assert!(
            linked_static,
            "build.rs linked the hook binaries dynamically on CI: see its cargo warning"
        );
    }
    // Every binary `harness install` registers: build.rs keeps its own copy of this list (a
    // build script cannot use the crate), and this is what keeps the two in step.
    let per_event = agent_harness::install::HOOK_BINARIES
        .iter()
        .chain([&agent_harness::install::STATUSLINE_BINARY]);
    for &name in per_event {
        assert_eq!(
            names_an_interpreter(&support::bin(name)),
            !linked_static,
            "{name}: static link asked for: {linked_static}"
        );
        // A crt-static build is the toolchain's own static PIE, not build.rs's link.
        if linked_static && !cfg!(target_feature = "crt-static") {
            assert_eq!(
                elf_type(&support::bin(name)),
                2,
                "{name}: build.rs links it at a fixed address (-static -no-pie)"
            );
        }
    }
    // A crt-static build makes every binary static, the CLI too.
    if !cfg!(target_feature = "crt-static") {
        assert!(names_an_interpreter(&support::bin("harness")));
    }
}
