//! Many hook processes writing one store at once lose nothing and log nothing.

mod support;

use support::{Env, stderr};

const PROCESSES: usize = 16;
const EVENTS_EACH: usize = 200;

#[test]
fn sixteen_writers_of_two_hundred_events_each_lose_nothing() {
    let env = Env::new("concurrent");
    std::thread::scope(|scope| {
        for writer in 0..PROCESSES {
            let env = &env;
            scope.spawn(move || {
                for i in 0..EVENTS_EACH {
                    // Alternate Pre and Post so that tool-call joins contend too.
                    let (bin, event) = if i % 2 == 0 {
                        ("harness-pre-tool-use", "PreToolUse")
                    } else {
                        ("harness-post-tool-use", "PostToolUse")
                    };
                    let payload = serde_json::json!({
                        "session_id": format!("writer-{writer:02}"),
                        "transcript_path": "/tmp/t.jsonl",
                        "cwd": "/tmp",
                        "hook_event_name": event,
                        "tool_name": "Edit",
                        "tool_use_id": format!("toolu_{writer}_{}", i / 2),
                        "tool_input": {"file_path": format!("/tmp/f{writer}.txt"), "old_string": "a", "new_string": "b"},
                        "duration_ms": 1,
                    });
                    let out = env.hook(bin, payload.to_string());
                    assert_eq!(out.status.code(), Some(0));
                    assert!(out.stderr.is_empty(), "writer {writer} event {i}: {}", stderr(&out));
                }
            });
        }
    });
    let total = (PROCESSES * EVENTS_EACH) as i64;
    assert_eq!(env.count("SELECT count(*) FROM events"), total);
    assert_eq!(
        env.count("SELECT count(DISTINCT session_id) FROM events"),
        PROCESSES as i64
    );
    let sessions = agent_harness::store::query::sessions(&env.db(), 100).unwrap();
    assert_eq!(sessions.len(), PROCESSES);
    assert!(sessions.iter().all(|s| s.event_count == EVENTS_EACH as i64));
    assert_eq!(
        env.count("SELECT count(*) FROM tool_calls WHERE outcome = 'success'"),
        total / 2
    );
    assert_eq!(env.log_text(), "", "nothing logged");
    assert!(!agent_harness::store::spool::path_for(&env.db).exists());
}
