//! End-to-end memory with the real `claude` (each tested release) and the real `gemini`: a
//! session edits files and is compacted (`/compact`), and the (mock) API sees the harness's
//! hand-back in the next request; a new session in the same project gets the project's brief;
//! a Gemini CLI session with the harness hooks gets it too.

mod support;

use serde_json::json;
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;
use support::gemini::{GTurn, GeminiMock};
use support::gemini_cli::Gemini;

const HAND_BACK: &str = "where this session stood before the compaction";
const BRIEF: &str = "what happened in this project lately";

#[test]
fn a_compacted_session_gets_its_hand_back_and_the_next_sessions_get_the_brief() {
    let gemini = support::clients::gemini();
    support::clients::each_claude(|claude| {
        a_compacted_session_gets_its_hand_back_and_the_next_sessions_get_the_brief_on(
            claude,
            gemini.clone(),
        )
    });
}

fn a_compacted_session_gets_its_hand_back_and_the_next_sessions_get_the_brief_on(
    claude: &support::clients::Claude,
    gemini: Option<std::path::PathBuf>,
) {
    let mock = AnthropicMock::start(vec![]);
    let c = ClaudeEnv::new("e2e-memory", claude, mock.url());
    std::fs::write(c.project.join("hello.txt"), "hi\n").unwrap();
    let p = |f: &str| c.project.join(f).to_string_lossy().into_owned();
    mock.push(vec![
        Turn::tool(
            "Edit",
            json!({"file_path": p("hello.txt"), "old_string": "hi", "new_string": "hello"}),
        ),
        Turn::tool(
            "Write",
            json!({"file_path": p("importer.rs"), "content": "fn import() {}\n"}),
        ),
        Turn::text("The importer skeleton is in place."),
    ]);
    let run = c.run("start the CSV importer", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let session = run.session_id().expect("a session id");
    assert_eq!(mock.remaining(), 0, "{}", run.describe());
    assert_eq!(
        c.env.count_when(
            "SELECT count(*) FROM memory WHERE kind = 'turn' AND text LIKE '%importer.rs%'",
            1
        ),
        1
    );

    // /compact, then one more prompt on the compacted session.
    mock.push(vec![Turn::text("Summary: an importer was started.")]);
    let run = c.run("/compact", &["--resume", &session]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(
        c.env
            .count_when("SELECT count(*) FROM memory WHERE kind = 'snapshot'", 1),
        1
    );
    let before = mock.message_requests().len();
    mock.push(vec![Turn::text("Next I will parse quoted fields.")]);
    let run = c.run("what is next?", &["--resume", &session]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let after = support::joined(&mock.message_requests()[before..]);
    assert!(after.contains(HAND_BACK), "no hand-back in: {after}");
    assert!(
        after.contains("hello.txt") && after.contains("importer.rs"),
        "{after}"
    );
    assert!(after.contains("start the CSV importer"), "{after}");

    // A new session in the project: the brief, naming the earlier session's work.
    let before = mock.message_requests().len();
    mock.push(vec![Turn::text("ok")]);
    let run = c.run("hello", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let text = support::joined(&mock.message_requests()[before..]);
    assert!(text.contains(BRIEF), "no brief in: {text}");
    assert!(
        text.contains(&format!("Claude session {}", &session[..8])),
        "{text}"
    );
    assert!(text.contains("importer.rs"), "{text}");

    // A Gemini CLI session with the harness hooks, in the same project: the same brief.
    let Some(gemini) = gemini else {
        return;
    };
    let gmock = GeminiMock::start(vec![GTurn::Text("Understood.".into())]);
    let g = Gemini::setup(&c.env, &c.project, gemini, gmock.url());
    let run = g.run("what did Claude do here?");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let text = support::joined(&gmock.chat_requests());
    assert!(text.contains(BRIEF), "no brief for Gemini in: {text}");
    assert!(text.contains("importer.rs"), "{text}");
}
