//! Test lines shaped like Claude Code 2.1.197's (reference §4.2), with the few changes each case
//! needs.

use serde_json::{Value, json};

/// One transcript line under construction.
pub struct Line(pub Value);

impl Line {
    /// An assistant line as 2.1.197 writes it: `message` before `type`, usage 11/7/5/3.
    pub fn assistant(message_id: &str, request_id: &str) -> Line {
        Line(json!({
            "parentUuid": "c091b2c4-0000-4000-8000-000000000001",
            "isSidechain": false,
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4-8",
                "content": [{"type": "text", "text": "Done."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {
                    "input_tokens": 11,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 3,
                    "output_tokens": 7,
                    "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                    "service_tier": "standard",
                    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 5},
                    "inference_geo": "",
                    "iterations": [],
                    "speed": "standard"
                },
                "stop_details": null
            },
            "requestId": request_id,
            "type": "assistant",
            "uuid": "5a19c2d0-0000-4000-8000-000000000002",
            "timestamp": "2026-11-21T10:47:24.098Z",
            "userType": "external",
            "entrypoint": "sdk-cli",
            "cwd": "/home/dev/proj",
            "sessionId": "f6060000-0000-4000-8000-000000000003",
            "version": "2.1.197",
            "gitBranch": "master"
        }))
    }

    /// A user line carrying a tool result, `type` before `message` as Claude Code writes it.
    pub fn user(text: &str) -> Line {
        Line(json!({
            "parentUuid": "5a19c2d0-0000-4000-8000-000000000002",
            "isSidechain": false,
            "promptId": "c0da8a6d-0000-4000-8000-000000000004",
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"tool_use_id": "toolu_01", "type": "tool_result", "content": text}]
            },
            "uuid": "7b2e0000-0000-4000-8000-000000000005",
            "timestamp": "2026-11-21T10:47:25.000Z",
            "sessionId": "f6060000-0000-4000-8000-000000000003",
            "version": "2.1.197"
        }))
    }

    /// Sets the field at a JSON pointer (`/message/usage/output_tokens`), creating it if needed.
    pub fn set(mut self, pointer: &str, value: Value) -> Line {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        let Some(Value::Object(map)) = self.0.pointer_mut(parent) else {
            panic!("no object at {parent}");
        };
        map.insert(key.to_owned(), value);
        self
    }

    /// Removes the field at a JSON pointer.
    pub fn remove(mut self, pointer: &str) -> Line {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        if let Some(Value::Object(map)) = self.0.pointer_mut(parent) {
            map.shift_remove(key);
        }
        self
    }

    pub fn sidechain(self) -> Line {
        self.set("/isSidechain", json!(true))
    }

    pub fn text(&self) -> String {
        self.0.to_string()
    }
}

/// An empty directory of this test's own (tests run in parallel), removed when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ah-usage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, relative: &str) -> std::path::PathBuf {
        self.0.join(relative)
    }

    /// Writes `text` to `relative`, creating directories.
    pub fn write(&self, relative: &str, text: &str) -> std::path::PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn append(&self, relative: &str, text: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(relative))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Assistant lines `msg_{i}`/`req_{i}` for `i` in `ids`, each with `\n`, output tokens = i.
pub fn assistant_lines(ids: std::ops::Range<u64>) -> String {
    ids.map(|i| {
        Line::assistant(&format!("msg_{i}"), &format!("req_{i}"))
            .set("/message/usage/output_tokens", json!(i))
            .text()
            + "\n"
    })
    .collect()
}
