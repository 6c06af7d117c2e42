//! Recording one hook call: the event row, the session it belongs to, and the tool call it
//! starts or finishes. A [`Recording`] is plain owned data so that it can also wait in the spool
//! file when the store cannot be written.

use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Kind};
use crate::paths;
use crate::process::ClientProcess;
use crate::redact;

/// How a finished tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// What this event does to its session's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    None,
    Started {
        source: Option<String>,
        client: Option<ClientProcess>,
    },
    Ended {
        reason: Option<String>,
    },
}

/// What this event does to a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolPhase {
    Started,
    Finished {
        outcome: Outcome,
        duration_ms: Option<i64>,
        error: Option<String>,
    },
}

/// The tool call an event concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub name: String,
    pub call_key: String,
    pub file_path: Option<String>,
    pub phase: ToolPhase,
}

/// Everything one hook call writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub ts_ms: i64,
    pub session_id: Option<String>,
    pub agent: String,
    pub event: String,
    pub tool_use_id: Option<String>,
    pub agent_id: Option<String>,
    pub cwd: Option<String>,
    pub project_root: Option<String>,
    pub transcript_path: Option<String>,
    pub model: Option<String>,
    pub lifecycle: Lifecycle,
    pub tool: Option<ToolRecord>,
    pub truncated: bool,
    /// The payload as JSON text, secrets redacted.
    pub payload: String,
    /// Set when the recording is spooled: what makes its replay idempotent (see `store::spool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The stored form of a payload over the bound: its first 64 KiB, redacted.
fn prefix_payload(prefix: &[u8], total_len: u64) -> String {
    const KEEP: usize = 64 * 1024;
    let head = &prefix[..prefix.len().min(KEEP)];
    // The prefix is JSON text cut anywhere: redacting it as plain text would meet `\n` where a
    // line starts and miss every secret after one (issue 9), so its string literals are decoded,
    // redacted and encoded again.
    let head = redact::redact_json_text(&String::from_utf8_lossy(head));
    serde_json::json!({
        "truncated": true,
        "total_bytes": total_len,
        "prefix": head,
    })
    .to_string()
}

/// The most bytes of one string of a tool's response that are stored.
pub const RESPONSE_STRING_BYTES: usize = 4 * 1024;
/// The most items of one array of a tool's response that are stored.
pub const RESPONSE_ARRAY_ITEMS: usize = 100;
/// The most bytes of JSON text a stored tool response takes; past it, once its strings and
/// arrays are clipped, the response is kept as the head of its JSON text.
pub const RESPONSE_BYTES: usize = 64 * 1024;

/// Bounds the stored copy of a tool's response. What a tool gave back (a file read whole, an
/// edited file's original text, a command's output, a copy of what was written) is what makes
/// payloads large, and nothing the harness does reads more than its small fields: the lock,
/// review, memory and export work from `tool_input`, which is kept whole. So the write lock is
/// not held to store megabytes nobody reads, and the store does not grow a copy of every file
/// read. Each string keeps its first [`RESPONSE_STRING_BYTES`], each array its first
/// [`RESPONSE_ARRAY_ITEMS`] (give or take the 32 a note costs), and what was left is counted in a
/// note where it was; a response still over [`RESPONSE_BYTES`] (many small keys) becomes the
/// first [`RESPONSE_STRING_BYTES`] of its JSON text. The stored copy is never larger than what came.
pub fn clip_response(response: &mut serde_json::Value) {
    // Quoted, a string can grow six times (`\u0001`): under an eighth of the bound, the text
    // surely fits and need not be written out to be measured.
    if clip_value(response) > RESPONSE_BYTES / 8 {
        let text = response.to_string();
        if text.len() <= RESPONSE_BYTES {
            return;
        }
        let head = crate::text::head(&text, RESPONSE_STRING_BYTES);
        *response = serde_json::json!({
            "clipped": format!("[agent-harness: {} of {} bytes stored]", head.len(), text.len()),
            "head": head,
        });
    }
}

/// Clips one value in place; returns about what it costs stored.
fn clip_value(value: &mut serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            // Worth a note only when it saves more than the note costs.
            if s.len() > RESPONSE_STRING_BYTES + 64 {
                let cut = crate::text::head(s, RESPONSE_STRING_BYTES).len();
                let left = s.len() - cut;
                s.truncate(cut);
                s.push_str(&format!("… [agent-harness: {left} more bytes not stored]"));
            }
            s.len() + 2
        }
        Value::Array(items) => {
            let left = items.len().saturating_sub(RESPONSE_ARRAY_ITEMS);
            // Each item left out saves two bytes at least: 32 of them pay for the note.
            if left >= 32 {
                items.truncate(RESPONSE_ARRAY_ITEMS);
                items.push(Value::String(format!(
                    "[agent-harness: {left} more items not stored]"
                )));
            }
            items.iter_mut().map(clip_value).sum::<usize>() + 2
        }
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| k.len() + 3 + clip_value(v))
            .sum::<usize>()
            .saturating_add(2),
        _ => 8,
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (ts_ms, session_id, agent, event, tool_name, \
    tool_use_id, file_path, truncated, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const INSERT_SESSION: &str = "INSERT INTO sessions (session_id, agent, first_seen_ms, cwd, \
    project_root, transcript_path, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (session_id) DO NOTHING";

const START_TOOL: &str = "INSERT INTO tool_calls (session_id, call_key, seq, tool_name, \
    file_path, agent_id, started_ms, outcome) VALUES (?1, ?2, \
    coalesce((SELECT max(seq) + 1 FROM tool_calls WHERE session_id = ?1 AND call_key = ?2), 0), \
    ?3, ?4, ?5, ?6, 'pending')";

const FINISH_TOOL: &str = "UPDATE tool_calls SET finished_ms = ?3, outcome = ?4, error = ?5, \
    duration_ms = coalesce(?6, max(0, ?3 - started_ms)) \
    WHERE session_id = ?1 AND call_key = ?2 AND seq = \
    (SELECT max(seq) FROM tool_calls WHERE session_id = ?1 AND call_key = ?2 \
     AND outcome = 'pending')";

impl Recording {
    /// The statements [`Recording::apply`] runs in the common case, to compile before the write
    /// lock is taken (see `Store::write_prepared`).
    pub fn statements(&self) -> Vec<&'static str> {
        let mut out = vec![INSERT_EVENT];
        if self.session_id.is_some() {
            out.push(INSERT_SESSION);
        }
        match self.tool.as_ref().map(|t| &t.phase) {
            Some(ToolPhase::Started) => out.push(START_TOOL),
            Some(ToolPhase::Finished { .. }) => out.push(FINISH_TOOL),
            None => {}
        }
        out
    }

    /// Builds the recording of a parsed event. `client` is the client process, learned only at
    /// SessionStart (reading /proc costs a little, and later events need not repeat it).
    pub fn of(event: &Event<'_>, now_ms: i64, client: Option<ClientProcess>) -> Recording {
        let p = &event.payload;
        let mut raw = p.raw.clone();
        redact::redact_value(&mut raw);
        // Clipped after redaction: a secret cut in two at the clip could pass the scanner.
        if let Some(response) = raw.get_mut("tool_response") {
            clip_response(response);
        }
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let lifecycle = match event.kind {
            Kind::SessionStart => Lifecycle::Started {
                source: owned(p.source),
                client,
            },
            Kind::SessionEnd => Lifecycle::Ended {
                reason: owned(p.reason),
            },
            _ => Lifecycle::None,
        };
        let tool = event.tool.as_ref().and_then(|t| {
            let phase = match event.kind {
                Kind::PreTool => ToolPhase::Started,
                Kind::PostTool => ToolPhase::Finished {
                    outcome: Outcome::Success,
                    duration_ms: p.duration_ms.map(|d| d as i64),
                    error: None,
                },
                Kind::PostToolFailure => ToolPhase::Finished {
                    outcome: if p.is_interrupt == Some(true) {
                        Outcome::Interrupted
                    } else {
                        Outcome::Failure
                    },
                    duration_ms: p.duration_ms.map(|d| d as i64),
                    error: p.error.map(|e| redact::redact_str(e).into_owned()),
                },
                _ => return None,
            };
            Some(ToolRecord {
                name: t.name.to_owned(),
                call_key: t.call_key.clone(),
                file_path: t.file.as_ref().map(|f| f.to_string_lossy().into_owned()),
                phase,
            })
        });
        let project_root = p
            .cwd
            .and_then(|cwd| paths::project_root(std::path::Path::new(cwd)))
            .map(|r| r.to_string_lossy().into_owned());
        Recording {
            ts_ms: now_ms,
            session_id: owned(p.session_id),
            agent: event.agent.as_str().to_owned(),
            event: p.hook_event_name.to_owned(),
            tool_use_id: owned(p.tool_use_id),
            agent_id: owned(p.agent_id),
            cwd: owned(p.cwd),
            project_root,
            transcript_path: owned(p.transcript_path),
            model: owned(p.model),
            lifecycle,
            tool,
            truncated: false,
            payload: raw.to_string(),
            uid: None,
        }
    }

    /// The recording of a payload too large to parse: attributed to its session when the prefix
    /// names one, with the redacted prefix kept as a JSON string.
    pub fn truncated(
        prefix: &[u8],
        total_len: u64,
        fallback_event: &str,
        agent: &str,
        now_ms: i64,
    ) -> Recording {
        use crate::payload::salvage_field;
        let field = |k| salvage_field(prefix, k).map(str::to_owned);
        let payload = prefix_payload(prefix, total_len);
        Recording {
            ts_ms: now_ms,
            session_id: field("session_id"),
            agent: agent.to_owned(),
            event: field("hook_event_name").unwrap_or_else(|| fallback_event.to_owned()),
            tool_use_id: field("tool_use_id"),
            agent_id: field("agent_id"),
            cwd: field("cwd"),
            project_root: None,
            transcript_path: field("transcript_path"),
            model: None,
            lifecycle: Lifecycle::None,
            tool: None,
            truncated: true,
            payload,
            uid: None,
        }
    }

    /// Stores a payload over the bound as its redacted prefix (the fields acted on came from its
    /// skeleton, see [`crate::payload::skeleton`]).
    pub fn keep_prefix(&mut self, prefix: &[u8], total_len: u64) {
        self.truncated = true;
        self.payload = prefix_payload(prefix, total_len);
    }

    /// Writes this recording: the event row, the session upsert, the tool call join. Returns the
    /// event's id.
    pub fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        let tool = self.tool.as_ref();
        tx.prepare_cached(INSERT_EVENT).and_then(|mut st| {
            st.execute(params![
                self.ts_ms,
                self.session_id,
                self.agent,
                self.event,
                tool.map(|t| &t.name),
                self.tool_use_id,
                tool.and_then(|t| t.file_path.as_ref()),
                self.truncated,
                self.payload,
            ])
        })?;
        let event_id = tx.last_insert_rowid();
        let Some(session) = &self.session_id else {
            return Ok(event_id);
        };
        // A no-op (no page written) for a session already known.
        tx.prepare_cached(INSERT_SESSION).and_then(|mut st| {
            st.execute(params![
                session,
                self.agent,
                self.ts_ms,
                self.cwd,
                self.project_root,
                self.transcript_path,
                self.model,
            ])
        })?;
        match &self.lifecycle {
            Lifecycle::None => {}
            Lifecycle::Started { source, client } => {
                tx.execute(
                    "UPDATE sessions SET source = ?2, ended_ms = NULL, end_reason = NULL, \
                     client_pid = coalesce(?3, client_pid), \
                     client_start = coalesce(?4, client_start), \
                     cwd = coalesce(?5, cwd), project_root = coalesce(?6, project_root), \
                     transcript_path = coalesce(?7, transcript_path), model = coalesce(?8, model) \
                     WHERE session_id = ?1",
                    params![
                        session,
                        source,
                        client.map(|c| c.pid),
                        client.map(|c| c.start_ticks as i64),
                        self.cwd,
                        self.project_root,
                        self.transcript_path,
                        self.model,
                    ],
                )?;
            }
            Lifecycle::Ended { reason } => {
                tx.execute(
                    "UPDATE sessions SET ended_ms = ?2, end_reason = ?3 WHERE session_id = ?1",
                    params![session, self.ts_ms, reason],
                )?;
                tx.execute(
                    "UPDATE tool_calls SET outcome = 'abandoned' \
                     WHERE session_id = ?1 AND outcome = 'pending'",
                    params![session],
                )?;
            }
        }
        if let Some(tool) = tool {
            self.apply_tool(tx, session, tool)?;
        }
        Ok(event_id)
    }

    fn apply_tool(
        &self,
        tx: &Transaction<'_>,
        session: &str,
        tool: &ToolRecord,
    ) -> rusqlite::Result<()> {
        match &tool.phase {
            ToolPhase::Started => {
                tx.prepare_cached(START_TOOL)?.execute(params![
                    session,
                    tool.call_key,
                    tool.name,
                    tool.file_path,
                    self.agent_id,
                    self.ts_ms
                ])?;
            }
            ToolPhase::Finished {
                outcome,
                duration_ms,
                error,
            } => {
                let updated = tx.prepare_cached(FINISH_TOOL)?.execute(params![
                    session,
                    tool.call_key,
                    self.ts_ms,
                    outcome.as_str(),
                    error,
                    duration_ms
                ])?;
                if updated == 0 {
                    // The Post event without its Pre (hooks registered for Post only, or the Pre
                    // lost to a crash): still a call, with what is known of it.
                    tx.prepare_cached(
                        "INSERT INTO tool_calls (session_id, call_key, seq, tool_name, file_path, \
                         agent_id, finished_ms, duration_ms, outcome, error) \
                         VALUES (?1, ?2, coalesce((SELECT max(seq) + 1 FROM tool_calls \
                                 WHERE session_id = ?1 AND call_key = ?2), 0), \
                                 ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        session,
                        tool.call_key,
                        tool.name,
                        tool.file_path,
                        self.agent_id,
                        self.ts_ms,
                        duration_ms,
                        outcome.as_str(),
                        error
                    ])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn stored(payload: Value) -> Value {
        let p = crate::payload::HookPayload::view(&payload).unwrap();
        let rec = Recording::of(&Event::reduce(p), 0, None);
        serde_json::from_str(&rec.payload).unwrap()
    }

    #[test]
    fn a_tool_response_is_stored_clipped_and_its_input_whole() {
        let file = "ä".repeat(1_500_000); // 3 MB of two-byte characters
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Write", "tool_use_id": "t1",
            "tool_input": {"file_path": "/tmp/a", "content": file},
            "tool_response": {"type": "create", "filePath": "/tmp/a", "content": file,
                              "structuredPatch": (0..5000).map(|i| format!("+{i}")).collect::<Vec<_>>()},
        }));
        assert_eq!(stored["tool_input"]["content"], file.as_str());
        let r = &stored["tool_response"];
        assert_eq!(
            (r["type"].as_str(), r["filePath"].as_str()),
            (Some("create"), Some("/tmp/a"))
        );
        let content = r["content"].as_str().unwrap();
        let kept = content.split('…').next().unwrap();
        assert!(
            kept.len() <= RESPONSE_STRING_BYTES && file.starts_with(kept),
            "{}",
            kept.len()
        );
        assert!(
            content.ends_with(&format!(
                "[agent-harness: {} more bytes not stored]",
                file.len() - kept.len()
            )),
            "{}",
            &content[kept.len()..]
        );
        let patch = r["structuredPatch"].as_array().unwrap();
        assert_eq!(patch.len(), RESPONSE_ARRAY_ITEMS + 1);
        assert_eq!(
            patch[RESPONSE_ARRAY_ITEMS],
            "[agent-harness: 4900 more items not stored]"
        );
        assert!(serde_json::to_string(r).unwrap().len() < 2 * RESPONSE_STRING_BYTES);
    }

    #[test]
    fn a_secret_at_the_clip_is_redacted_before_it_is_cut() {
        // The key straddles the cut: clipped first, its head would no longer look like a key.
        let key = "AKIAIOSFODNN7EXAMPLE";
        let text = format!("{}{key} tail", "x".repeat(RESPONSE_STRING_BYTES - 10));
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Bash", "tool_use_id": "t2", "tool_input": {"command": "env"},
            "tool_response": {"stdout": format!("{text}{}", "y".repeat(10_000))},
        }))
        .to_string();
        assert!(
            !stored.contains("AKIAIOSFODNN"),
            "{}",
            &stored[stored.len() - 300..]
        );
    }

    #[test]
    fn a_small_response_is_stored_as_it_came() {
        let response = json!({"stdout": "ok", "stderr": "", "interrupted": false,
                              "items": [1, 2, 3], "nested": {"status": "async_launched"}});
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Bash", "tool_use_id": "t3", "tool_input": {"command": "true"},
            "tool_response": response,
        }));
        assert_eq!(stored["tool_response"], response);
    }

    #[test]
    fn a_response_of_many_small_keys_is_kept_as_the_head_of_its_text() {
        let many: serde_json::Map<String, Value> =
            (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let text = Value::Object(many.clone()).to_string();
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "AfterTool",
            "timestamp": "2026-12-02T00:00:00Z",
            "tool_name": "glob", "tool_input": {"pattern": "*"},
            "tool_response": many,
        }));
        let r = &stored["tool_response"];
        let head = r["head"].as_str().unwrap();
        assert!(head.starts_with("{\"k0\":0,") && text.starts_with(head));
        assert!(serde_json::to_string(r).unwrap().len() <= RESPONSE_BYTES);
        let note = format!(
            "[agent-harness: {} of {} bytes stored]",
            head.len(),
            text.len()
        );
        assert_eq!(r["clipped"].as_str(), Some(note.as_str()));
    }
}
