//! Terminal safety of everything `harness` prints for people: strings a model chose (file names,
//! prompts, commands, session ids, tool names, errors, answers) are stored through the real hook
//! binaries, then every listing is checked for bytes a terminal would act on.
//!
//! The threat: a file name carrying OSC 52 writes the user's clipboard, OSC 0 sets the title,
//! CSI 2J clears the screen, and a bidi override makes `evil\u{202e}txt.exe` read as `exe.txt`.

mod support;

use std::io::Write as _;
use std::process::Output;

use serde_json::{Value, json};
use support::{Env, stderr, stdout};

/// Everything hostile at once: OSC 52 (clipboard), OSC 0 (title), CSI clear screen, a C1 CSI,
/// DEL, a bidi override and an isolate, a carriage return and line breaks.
const HOSTILE: &str = "evil\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}]0;title\u{1b}\\\u{202e}txt.exe\u{1b}[2J\
                       \u{9b}31m\u{2066}x\u{2069}\r\nsecond line\u{7f}\u{0}\u{8}";

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// A hostile session id: the prefix it shares with nothing else keeps it addressable.
fn hostile_session() -> String {
    format!("cccc\u{1b}]0;t\u{7}\u{202e}-{HOSTILE}")
}

/// Asserts that `text` carries nothing a terminal acts on: no C0 control but the line break, no
/// DEL, no C1 control, no bidi embedding, override, isolate or mark.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        assert!(
            (*b >= 0x20 || *b == b'\n') && *b != 0x7f,
            "{what}: byte {b:#04x} at {i} reached the terminal in {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for c in text.chars() {
        let bad = matches!(c,
            '\u{80}'..='\u{9f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}' | '\u{200f}' | '\u{061c}');
        assert!(!bad, "{what}: {c:?} reached the terminal in {text:?}");
    }
}

struct Project {
    env: Env,
    root: String,
    file: String,
}

impl Project {
    fn new() -> Project {
        let env = Env::new("terminal");
        let root = env.dir.path().join("proj");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let root = std::fs::canonicalize(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let file = format!("{root}/{HOSTILE}.rs");
        Project { env, root, file }
    }

    fn hook(&self, bin: &str, session: &str, event: &str, extra: Value) -> Output {
        let mut p = json!({
            "session_id": session,
            "transcript_path": format!("/tmp/{}.jsonl", &session[..4]),
            "cwd": self.root,
            "hook_event_name": event,
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        let out = self.env.hook(bin, p.to_string());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    }

    fn harness(&self, args: &[&str]) -> Output {
        self.env.cmd("harness").args(args).output().unwrap()
    }
}

/// A store full of hostile strings, each stored by the hook binary that would store it.
fn hostile_store() -> Project {
    let p = Project::new();
    let h = hostile_session();
    p.hook(
        "harness-session-start",
        A,
        "SessionStart",
        json!({"source": HOSTILE, "model": HOSTILE}),
    );
    p.hook(
        "harness-user-prompt-submit",
        A,
        "UserPromptSubmit",
        json!({"prompt": HOSTILE}),
    );
    // A takes the hostile file, B is denied it: the deny reason quotes the name.
    p.hook(
        "harness-pre-tool-use",
        A,
        "PreToolUse",
        json!({"tool_name": "Write", "tool_use_id": "toolu_1",
               "tool_input": {"file_path": p.file, "content": "x"}}),
    );
    // The write went through: the claim is confirmed (no longer provisional).
    p.hook(
        "harness-post-tool-use",
        A,
        "PostToolUse",
        json!({"tool_name": "Write", "tool_use_id": "toolu_1",
               "tool_input": {"file_path": p.file, "content": "x"},
               "tool_response": {"filePath": p.file}}),
    );
    let denied = p.hook(
        "harness-pre-tool-use",
        B,
        "PreToolUse",
        json!({"tool_name": "Write", "tool_use_id": "toolu_2",
               "tool_input": {"file_path": p.file, "content": "y"}}),
    );
    assert!(stdout(&denied).contains("deny"), "{}", stdout(&denied));
    p.hook(
        "harness-pre-tool-use",
        A,
        "PreToolUse",
        json!({"tool_name": "Bash", "tool_use_id": "toolu_3",
               "tool_input": {"command": format!("echo '{HOSTILE}'")}}),
    );
    p.hook(
        "harness-pre-tool-use",
        &h,
        "PreToolUse",
        json!({"tool_name": HOSTILE, "tool_use_id": HOSTILE, "tool_input": {"x": 1}}),
    );
    p.hook(
        "harness-stop-failure",
        &h,
        "StopFailure",
        json!({"error": HOSTILE, "error_details": HOSTILE}),
    );
    // A Gemini run whose task, error and answer are hostile (runs are written by the runner, not
    // by a hook; the row is what it would store).
    let now = agent_harness::time::now_ms();
    p.env
        .db()
        .execute(
            "INSERT INTO runs (run_id, requester, task, prompt, cwd, model, mode, status, \
             error_kind, error, created_ms, duration_ms, result) \
             VALUES ('gr-0123456789ab', ?1, ?2, ?2, ?2, ?2, 'read-only', 'error', 'api', ?3, ?4, \
             1500, ?2)",
            rusqlite::params![
                A,
                HOSTILE,
                format!("{HOSTILE}\n    at line 2\n{HOSTILE}"),
                now
            ],
        )
        .unwrap();
    // And a problem in the log that quotes the name.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p.env.log())
        .unwrap();
    writeln!(
        log,
        "{} harness-pre-tool-use[1]: cannot read {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        HOSTILE.replace('\n', " ")
    )
    .unwrap();
    p
}

#[test]
fn recorded_terminal_escapes_never_reach_the_terminal() {
    let p = hostile_store();
    let listings: Vec<Vec<&str>> = vec![
        vec!["events"],
        vec!["events", "-n", "100", "--decision", "any"],
        vec!["events", "--decision", "deny"],
        vec!["events", "--session", "cccc"],
        vec!["status"],
        vec!["sessions"],
        vec!["sessions", "--live"],
        vec!["locks"],
        vec!["locks", "--history"],
        vec!["runs"],
        vec!["runs", "show", "gr-0123"],
        vec!["quota", "--no-refresh"],
        vec!["doctor"],
    ];
    for args in &listings {
        let out = p.harness(args);
        let what = format!("harness {}", args.join(" "));
        assert_terminal_safe(&format!("{what} (stdout)"), &out.stdout);
        assert_terminal_safe(&format!("{what} (stderr)"), &out.stderr);
        assert!(!out.stdout.is_empty(), "{what} printed nothing");
    }
    // The escapes are shown, visibly.
    let events = stdout(&p.harness(&["events", "-n", "100"]));
    assert!(events.contains("\\x1b]52;c;"), "{events}");
    assert!(events.contains("\\u{202e}"), "{events}");
    // Error messages that quote what was given are made safe too, and so is a release by hand.
    let out = p.harness(&["events", "--session", "zz\u{1b}]0;t\u{7}"]);
    assert_eq!(out.status.code(), Some(1));
    assert_terminal_safe("harness events --session <hostile>", &out.stderr);
    let out = p.harness(&["locks", "release", "--session", "aaaa"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_terminal_safe("harness locks release", &out.stdout);
    let history = p.harness(&["locks", "--history"]);
    assert_terminal_safe("harness locks --history", &history.stdout);
    assert!(
        stdout(&history).contains("released"),
        "{}",
        stdout(&history)
    );
}

#[test]
fn json_output_is_exact_and_still_safe_to_print() {
    let p = hostile_store();
    for args in [
        vec!["events", "--json", "-n", "100"],
        vec!["status", "--json"],
        vec!["sessions", "--json"],
        vec!["locks", "--json"],
        vec!["locks", "--history", "--json"],
        vec!["runs", "--json"],
    ] {
        let out = p.harness(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_terminal_safe(&args.join(" "), &out.stdout);
    }
    // Exact: the hostile strings come back byte for byte.
    let out = stdout(&p.harness(&["events", "--json", "-n", "100"]));
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        // Claude Code takes no NUL in a path, so the harness's claim path has none either.
        rows.iter()
            .any(|r| r["file_path"] == p.file.replace('\0', "").as_str()),
        "{out}"
    );
    assert!(rows.iter().any(|r| r["tool_name"] == HOSTILE), "{out}");
    assert!(
        rows.iter()
            .any(|r| r["session_id"] == hostile_session().as_str()),
        "{out}"
    );
    let history = stdout(&p.harness(&["locks", "--history", "--json"]));
    let first: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], p.file.replace('\0', "").as_str());
}

#[test]
fn a_multi_line_gemini_error_keeps_the_runs_table_aligned() {
    let p = hostile_store();
    let out = stdout(&p.harness(&["runs"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "heading, the run, its error on one line: {out}"
    );
    assert!(lines[0].starts_with("RUN "), "{out}");
    assert!(lines[1].starts_with("gr-0123456789ab  api "), "{out}");
    assert!(lines[2].starts_with("  ↳ evil\\x1b]52"), "{out}");
    // Every column of the heading starts where its cells start.
    let status_at = lines[0].find("STATUS").unwrap();
    assert_eq!(lines[1].find("api").unwrap(), status_at, "{out}");
    // `runs show` prints the whole error, indented line by line.
    let show = stdout(&p.harness(&["runs", "show", "gr-01"]));
    assert!(show.contains("error, whole:\n  evil"), "{show}");
    assert!(show.contains("\n      at line 2\n"), "{show}");
}
