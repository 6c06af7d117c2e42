//! The payload reader and event reduction against hostile input: arbitrary bytes, arbitrary JSON,
//! payloads cut at any point, wrong types in every field, huge values. Nothing panics, only broken
//! JSON is an error, and whatever reads as a hook payload reduces to an event. A few cases go
//! through the real binary to hold the fail-open contract end to end.

mod support;

use agent_harness::event::Event;
use agent_harness::payload::{self, HookPayload};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep, with the keys hooks use mixed into random ones.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "(/[a-z@%.]{0,6}){0,5}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("hook_event_name".to_string()),
        Just("session_id".to_string()),
        Just("tool_name".to_string()),
        Just("tool_input".to_string()),
        Just("file_path".to_string()),
        Just("command".to_string()),
        Just("cwd".to_string()),
        Just("timestamp".to_string()),
        Just("agent_id".to_string()),
        Just("prompt".to_string()),
        "[a-z_]{1,12}",
    ]
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("PreToolUse".to_string()),
        Just("PostToolUse".to_string()),
        Just("BeforeTool".to_string()),
        Just("SessionStart".to_string()),
        Just("UserPromptSubmit".to_string()),
        Just("Stop".to_string()),
        Just("SessionEnd".to_string()),
        ".{0,20}",
    ]
}

/// Reads, parses and reduces like the hook driver does, without IO or a store.
fn read_like_a_hook(bytes: &[u8]) -> Option<String> {
    let input = payload::read_bounded(bytes, 4096).ok()?;
    let value = match (input.truncated, input.skeleton) {
        (false, _) => payload::parse(&input.bytes).ok()?,
        (true, Some(s)) => s,
        (true, None) => payload::salvage_skeleton(&input.bytes)?,
    };
    let p = HookPayload::view(&value)?;
    let event = Event::reduce(p);
    Some(format!("{:?}", event.kind))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..8192)) {
        let _ = read_like_a_hook(&bytes);
    }

    #[test]
    fn any_object_with_an_event_name_reduces_to_an_event(
        mut obj in prop::collection::btree_map(key(), any_json(), 0..10),
        name in event_name(),
        tool_input in any_json(),
    ) {
        obj.insert("hook_event_name".into(), Value::String(name));
        obj.insert("tool_input".into(), tool_input);
        let bytes = serde_json::to_vec(&obj).unwrap();
        prop_assert!(read_like_a_hook(&bytes).is_some() || bytes.len() > 4096);
    }

    #[test]
    fn a_payload_cut_anywhere_never_panics(
        obj in prop::collection::btree_map(key(), any_json(), 1..10),
        cut in 0usize..10_000,
    ) {
        let mut obj = obj;
        obj.insert("hook_event_name".into(), json!("PreToolUse"));
        let bytes = serde_json::to_vec(&obj).unwrap();
        let cut = cut.min(bytes.len());
        let _ = read_like_a_hook(&bytes[..cut]);
    }

    #[test]
    fn wrong_types_in_every_known_field_are_tolerated(value in any_json()) {
        let mut p = json!({"hook_event_name": "PreToolUse"});
        for k in ["session_id", "cwd", "tool_name", "tool_input", "transcript_path", "agent_id",
                  "tool_use_id", "duration_ms", "is_interrupt", "model", "source", "timestamp"] {
            p[k] = value.clone();
        }
        let bytes = serde_json::to_vec(&p).unwrap();
        prop_assert!(read_like_a_hook(&bytes).is_some() || bytes.len() > 4096);
    }
}

/// A tool response as big tools give them: long strings of any character, long arrays, nesting.
fn bulky_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        (
            any::<char>(),
            ".{0,3}",
            prop_oneof![8 => 0usize..9000, 1 => 60_000usize..80_000]
        )
            .prop_map(|(c, tail, n)| Value::String(format!("{}{tail}", c.to_string().repeat(n)))),
    ];
    leaf.prop_recursive(3, 400, 160, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..160).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every string, array and the whole of a clipped response are within their bounds.
fn within_bounds(v: &Value) -> bool {
    use agent_harness::store::record::{CLIP_ARRAY_ITEMS, CLIP_STRING_BYTES};
    match v {
        Value::String(s) => s.len() <= CLIP_STRING_BYTES + 128,
        Value::Array(a) => a.len() <= CLIP_ARRAY_ITEMS + 64 && a.iter().all(within_bounds),
        Value::Object(m) => m.values().all(within_bounds),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The stored tool response is bounded, never larger than what came, the same when clipped
    /// again, and untouched when it was small.
    #[test]
    fn a_clipped_tool_response_is_bounded_and_never_grows(response in bulky_json()) {
        use agent_harness::store::record::{RESPONSE_BYTES, clip_response};
        let before = response.to_string();
        let mut clipped = response.clone();
        clip_response(&mut clipped);
        let after = clipped.to_string();
        prop_assert!(within_bounds(&clipped));
        prop_assert!(after.len() <= before.len());
        prop_assert!(after.len() <= RESPONSE_BYTES, "{} bytes", after.len());
        let mut again = clipped.clone();
        clip_response(&mut again);
        prop_assert_eq!(&again, &clipped);
        if before.len() <= 4096 {
            prop_assert_eq!(&clipped, &response);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever a payload holds, its stored form is JSON within the bound, never larger than the
    /// payload, and a small payload is stored as it came.
    #[test]
    fn a_stored_payload_is_bounded_and_never_grows(
        mut obj in prop::collection::btree_map(key(), bulky_json(), 0..6),
        input in bulky_json(),
        response in bulky_json(),
        prompt in bulky_json(),
        file_write in any::<bool>(),
    ) {
        use agent_harness::store::record::{ANNOTATION, PAYLOAD_BYTES, stored_payload};
        obj.remove(ANNOTATION);
        obj.insert("tool_input".into(), input);
        obj.insert("tool_response".into(), response);
        obj.insert("prompt".into(), prompt);
        let raw = Value::Object(obj.into_iter().collect());
        let before = raw.to_string();
        let (text, truncated) = stored_payload(raw.clone(), file_write, || before.len());
        let stored: Value = serde_json::from_str(&text).unwrap();
        prop_assert!(text.len() <= PAYLOAD_BYTES, "{} bytes", text.len());
        prop_assert!(text.len() <= before.len(), "{} > {}", text.len(), before.len());
        prop_assert_eq!(truncated, stored.get("prefix").is_some() && before.len() > PAYLOAD_BYTES);
        if before.len() <= 4096 {
            prop_assert_eq!(&stored, &raw);
        }
    }
}

#[test]
fn a_payload_over_the_bound_is_answered_from_its_small_fields() {
    let mut p = json!({"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Write",
                       "tool_input": {"file_path": "/tmp/f", "content": "x".repeat(10_000)}});
    let bytes = serde_json::to_vec(&p).unwrap();
    assert_eq!(read_like_a_hook(&bytes).as_deref(), Some("PreTool"));
    // A "file_path" inside the content is never taken for the argument.
    p["tool_input"] = json!({"content": "{\"file_path\": \"/etc/passwd\"}".repeat(500)});
    let bytes = serde_json::to_vec(&p).unwrap();
    let input = payload::read_bounded(&bytes[..], 1024).unwrap();
    let skeleton = input.skeleton.unwrap();
    assert_eq!(skeleton["tool_input"].get("file_path"), None);
}

#[test]
fn hostile_payloads_through_the_binary_fail_open_in_one_line() {
    let env = support::Env::new("adversarial-payload");
    let deep = "[".repeat(100_000);
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        b"{\"hook_event_name\": \"PreToolUse\", \"tool_input\": {\"file_path\": \"\\ud800\"}}"
            .to_vec(),
        b"\xef\xbb\xbf{\"hook_event_name\":\"Stop\"}".to_vec(),
        b"{\"hook_event_name\":\"PreToolUse\",\"hook_event_name\":\"Stop\"}".to_vec(),
        vec![0u8; 10_000],
        b"{\"hook_event_name\":\"PreToolUse\",\"session_id\":\"\x1b]52;c;aGk=\x07\"}".to_vec(),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let out = env.hook("harness-pre-tool-use", case);
        assert_eq!(out.status.code(), Some(0), "case {i}");
        let err = support::stderr(&out);
        assert!(err.lines().count() <= 1, "case {i}: {err}");
        let stdout = support::stdout(&out);
        assert!(
            stdout.is_empty() || serde_json::from_str::<Value>(stdout.trim()).is_ok(),
            "case {i}: stdout is one JSON object or nothing: {stdout}"
        );
    }
}
