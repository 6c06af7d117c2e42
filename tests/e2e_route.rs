//! End-to-end delegation advice with the real `claude` (each tested release): a broad-reading prompt reaches
//! the (mock) API with the harness's note in its context; a precise edit reaches it without one.

mod support;

use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;

#[test]
fn a_broad_reading_prompt_gets_the_note_and_a_precise_edit_gets_none() {
    support::clients::each_claude(
        a_broad_reading_prompt_gets_the_note_and_a_precise_edit_gets_none_on,
    );
}

fn a_broad_reading_prompt_gets_the_note_and_a_precise_edit_gets_none_on(
    claude: &support::clients::Claude,
) {
    let broad = AnthropicMock::start(vec![Turn::text("ok")]);
    let c = ClaudeEnv::new("e2e-route", claude, broad.url());
    let run = c.run(
        "Read through the entire project and give me an overview of how the modules fit together.",
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let text = support::joined(&broad.message_requests());
    assert!(
        text.contains("agent-harness route: hand this to Gemini"),
        "{text}"
    );
    assert!(
        text.contains("/delegate-gemini Read through the entire project"),
        "{text}"
    );

    let edit = AnthropicMock::start(vec![Turn::text("ok")]);
    let run = c.run_against(
        &edit.url(),
        "In src/config.rs rename the field `timeout` to `timeout_secs`.",
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let text = support::joined(&edit.message_requests());
    assert!(!text.contains("agent-harness route"), "{text}");
    assert_eq!(c.env.count_when("SELECT count(*) FROM routes", 2), 2);
    assert_eq!(
        c.env
            .count("SELECT count(*) FROM routes WHERE selected = 'gemini'"),
        1
    );
}
