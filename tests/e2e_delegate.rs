//! End-to-end delegation: a real `claude` session runs `/delegate-gemini`, the harness starts the
//! real `gemini` (against a mock Gemini API) and the answer reaches Claude's model.

mod support;

use serde_json::{Value, json};
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;
use support::gemini::{GTurn, GeminiMock};
use support::gemini_cli::Gemini;

/// A Claude set-up whose shell steps can start the pinned `gemini` against `gemini_url`.
fn setup(
    label: &str,
    claude: &support::clients::Claude,
    gemini: std::path::PathBuf,
    gemini_url: String,
) -> ClaudeEnv {
    let mut c = ClaudeEnv::new(label, claude, String::new());
    // `harness install` copied the /delegate-gemini command into the project.
    assert!(
        c.project
            .join(".claude/commands/delegate-gemini.md")
            .exists()
    );
    let g = Gemini::setup(&c.env, &c.project, gemini.clone(), gemini_url.clone());
    // No Gemini hooks in any settings file: the run brings its own.
    std::fs::remove_file(g.project.join(".gemini/settings.json")).unwrap();
    c.env.config(
        &json!({"gemini": {"binary": gemini, "wait_secs": 60, "timeout_secs": 90}}).to_string(),
    );
    c.extra_env = vec![
        ("GOOGLE_GEMINI_BASE_URL".into(), gemini_url),
        ("GEMINI_API_KEY".into(), "fake-e2e-key".into()),
    ];
    c
}

#[test]
fn delegate_gemini_runs_the_real_gemini_and_its_answer_reaches_claudes_model() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    support::clients::each_claude(|claude| {
        delegate_gemini_runs_the_real_gemini_and_its_answer_reaches_claudes_model_on(
            claude,
            gemini.clone(),
        )
    });
}

fn delegate_gemini_runs_the_real_gemini_and_its_answer_reaches_claudes_model_on(
    claude: &support::clients::Claude,
    gemini: std::path::PathBuf,
) {
    let mock_g = GeminiMock::start(vec![GTurn::Text(
        "GEMINI-FINDING: the parser lives in src/parse.rs".into(),
    )]);
    let mock_a = AnthropicMock::start(vec![Turn::text(
        "Gemini says the parser is in src/parse.rs.",
    )]);
    let mut c = setup("e2e-delegate", claude, gemini, mock_g.url());
    c.api_url = mock_a.url();
    let run = c.run("/delegate-gemini where is the parser?", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());

    // Gemini got the task (with the brief) as its prompt.
    let asked = support::joined(&mock_g.chat_requests());
    assert!(asked.contains("where is the parser?"), "{asked}");
    assert!(asked.contains("Context from agent-harness"), "{asked}");
    // Claude's model got Gemini's answer, fenced.
    let sent = support::joined(&mock_a.message_requests());
    assert!(
        sent.contains("GEMINI-FINDING: the parser lives in src/parse.rs"),
        "{sent}"
    );
    assert!(sent.contains("<<< gemini-output gr-"), "{sent}");
    // The run is on record, read-only, tied to the session that asked.
    let conn = c.env.db();
    let runs = agent_harness::store::runs::recent(&conn, 10).unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(
        (r.status.as_str(), r.mode.as_str()),
        ("success", "read-only")
    );
    assert_eq!(r.requester.as_deref(), run.session_id().as_deref());
    assert!(r.total_tokens.unwrap() > 0);
    // Gemini's own session was recorded as a gemini agent, under the run's id.
    let gemini_session = agent_harness::store::query::session(&conn, &r.run_id).unwrap();
    assert_eq!(gemini_session.map(|s| s.agent).as_deref(), Some("gemini"));
    assert_eq!(c.env.log_text(), "");
}

#[test]
fn hostile_arguments_never_reach_a_shell() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    support::clients::each_claude(|claude| {
        hostile_arguments_never_reach_a_shell_on(claude, gemini.clone())
    });
}

fn hostile_arguments_never_reach_a_shell_on(
    claude: &support::clients::Claude,
    gemini: std::path::PathBuf,
) {
    let mock_g = GeminiMock::start(vec![GTurn::Text("nothing to see".into())]);
    let mock_a = AnthropicMock::start(vec![Turn::text("ok")]);
    let mut c = setup("e2e-hostile", claude, gemini, mock_g.url());
    c.api_url = mock_a.url();
    let m = c.env.dir.path().join("pwned");
    let args = format!(
        "$(touch {m}) `touch {m}` \"; touch {m}\" '; touch {m}' ; touch {m} && touch {m}",
        m = m.display()
    );
    let run = c.run(&format!("/delegate-gemini {args}"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(!m.exists(), "part of the arguments ran in a shell");
    // Gemini received them as text.
    let asked = support::joined(&mock_g.chat_requests());
    assert!(
        asked.contains(&format!("$(touch {})", m.display())),
        "{asked}"
    );
    assert!(asked.contains("&& touch"), "{asked}");
}

#[test]
fn a_read_only_run_cannot_escalate_through_plan_mode() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    // The model tries the escalation chain from the reference: enter plan mode, write a plan,
    // exit plan mode (which would switch a headless session to YOLO), then run a shell command.
    let env = support::Env::new("e2e-escalation");
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let marker = project.join("escalated.txt");
    let mock_g = GeminiMock::start(vec![
        GTurn::Call {
            name: "enter_plan_mode".into(),
            args: json!({"reason": "plan"}),
        },
        GTurn::Call {
            name: "write_file".into(),
            args: json!({"file_path": "p.md", "content": "plan"}),
        },
        GTurn::Call {
            name: "exit_plan_mode".into(),
            args: json!({"plan_filename": "p.md"}),
        },
        GTurn::Call {
            name: "run_shell_command".into(),
            args: json!({"command": format!("touch {}", marker.display())}),
        },
        GTurn::Text("done".into()),
    ]);
    let _g = Gemini::setup(&env, &project, gemini.clone(), mock_g.url());
    std::fs::remove_file(project.join(".gemini/settings.json")).unwrap();
    support::gemini_cli::trust_folder(&env, &project);
    env.config(&json!({"gemini": {"binary": gemini, "timeout_secs": 90}}).to_string());
    let out = env
        .cmd("harness")
        // A task that starts with a dash reaches Gemini whole (`-p <task>` would not).
        .args(["delegate", "--json", "--", "-v flag: make a plan"])
        .env("GOOGLE_GEMINI_BASE_URL", mock_g.url())
        .env("GEMINI_API_KEY", "fake-e2e-key")
        .current_dir(&project)
        .output()
        .unwrap();
    let run: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(
        mock_g.chat_requests()[0]["contents"]
            .to_string()
            .contains("-v flag: make a plan"),
        "{run}"
    );
    assert!(
        !marker.exists(),
        "the escalation ran a shell command: {run}"
    );
    assert!(!project.join("p.md").exists());
    // None of the escalation's tools were even offered to the model.
    let offered: Vec<String> = mock_g.chat_requests()[0]["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    for tool in [
        "enter_plan_mode",
        "exit_plan_mode",
        "write_file",
        "replace",
        "run_shell_command",
    ] {
        assert!(
            !offered.iter().any(|t| t == tool),
            "{tool} offered: {offered:?}"
        );
    }
    assert_eq!(run["files_written"], json!([]));
}

#[test]
fn a_write_run_obeys_the_file_locks_through_its_own_hooks() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    let env = support::Env::new("e2e-write-locks");
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    let project = std::fs::canonicalize(&project).unwrap();
    let held = project.join("held.txt");
    std::fs::write(&held, "Claude's\n").unwrap();
    let mock_g = GeminiMock::start(vec![
        GTurn::Call {
            name: "write_file".into(),
            args: json!({"file_path": "held.txt", "content": "Gemini's\n"}),
        },
        GTurn::Call {
            name: "write_file".into(),
            args: json!({"file_path": "free.txt", "content": "Gemini's\n"}),
        },
        GTurn::Text("wrote what I could".into()),
    ]);
    let _g = Gemini::setup(&env, &project, gemini.clone(), mock_g.url());
    // No Gemini hooks in any settings file: the run brings its own, leaving the user's alone.
    std::fs::remove_file(project.join(".gemini/settings.json")).unwrap();
    let user_settings = env.home.join(".gemini/settings.json");
    let users = std::fs::read_to_string(&user_settings).unwrap();
    env.config(&json!({"gemini": {"binary": gemini, "timeout_secs": 90}}).to_string());
    // A live Claude session holds held.txt.
    let now = agent_harness::time::now_ms();
    let conn = env.db();
    agent_harness::store::claims::put(
        &conn,
        &agent_harness::store::claims::Claim {
            path: held.to_string_lossy().into_owned(),
            session_id: "ffffffff-0000-4000-8000-000000000006".into(),
            agent: "claude".into(),
            project_root: Some(project.to_string_lossy().into_owned()),
            tool_name: Some("Edit".into()),
            claimed_ms: now,
            touched_ms: now,
            expires_ms: now + 600_000,
        },
    )
    .unwrap();
    drop(conn);
    let delegate = || {
        let out = env
            .cmd("harness")
            .args([
                "delegate",
                "--write",
                "--json",
                "update held.txt and free.txt",
            ])
            .env("GOOGLE_GEMINI_BASE_URL", mock_g.url())
            .env("GEMINI_API_KEY", "fake-e2e-key")
            .current_dir(&project)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)))
    };
    // Neither client trusts the folder yet: the run is not forced through Gemini's trust check,
    // and the real Gemini refuses before anything runs.
    let refused = delegate();
    assert_eq!(refused["error_kind"], "untrusted", "{refused}");
    assert_eq!(refused["exit_code"], 55, "{refused}");
    assert!(!project.join("free.txt").exists());
    // The user trusts it in Gemini.
    support::gemini_cli::trust_folder(&env, &project);
    let run = delegate();
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        std::fs::read_to_string(&held).unwrap(),
        "Claude's\n",
        "the held file is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("free.txt")).unwrap(),
        "Gemini's\n"
    );
    assert_eq!(run["files_written"], json!(["free.txt"]));
    let told = support::joined(&mock_g.chat_requests());
    assert!(told.contains("is being edited by another agent"), "{told}");
    // The run was recorded as a gemini agent that now holds free.txt until its SessionEnd.
    let conn = env.db();
    let agent: String = conn
        .query_row(
            "SELECT agent FROM sessions WHERE session_id = ?1",
            [run["run_id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(agent, "gemini");
    let claims: i64 = conn
        .query_row(
            "SELECT count(*) FROM claims WHERE session_id = ?1",
            [run["run_id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(claims, 0, "released at the run's SessionEnd");
    // The user's Gemini settings are as they were, and the run's home is gone.
    assert_eq!(std::fs::read_to_string(&user_settings).unwrap(), users);
    let state = env.db.parent().unwrap().join("gemini");
    let homes: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("home-"))
        .collect();
    assert!(homes.is_empty(), "{homes:?}");
}
