//! Recording one hook call: the event row, the session it belongs to, and the tool call it
//! starts or finishes. A [`Recording`] is plain owned data so that it can also wait in the spool
//! file when the store cannot be written.

use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Kind, ToolClass};
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

/// The most bytes of one string of a tool's response, or of the body a file-writing tool writes,
/// that are stored.
pub const CLIP_STRING_BYTES: usize = 4 * 1024;
/// The most items of one such array that are stored.
pub const CLIP_ARRAY_ITEMS: usize = 100;
/// The most bytes of JSON text a stored tool response takes; past it, once its strings and
/// arrays are clipped, the response is kept as the head of its JSON text.
pub const RESPONSE_BYTES: usize = 64 * 1024;
/// The key of what the harness adds to a stored payload: `{"lines": n}` when a write's body was
/// clipped (a key a client might send is dropped first).
pub const ANNOTATION: &str = "agent_harness";

/// The most bytes of JSON text a stored payload takes. Past it, once every string is clipped to
/// [`CLIP_STRING_BYTES`], the payload is stored as its prefix and marked truncated, like one over
/// the read bound.
pub const PAYLOAD_BYTES: usize = 256 * 1024;
/// The most bytes of any other string of a payload that are stored: a prompt, a plan, a command.
/// What reads them reads less (memory 4,000 characters, the review's criteria 8,000, the
/// dashboard and the export 200 and 4,096).
pub const TEXT_BYTES: usize = 64 * 1024;

/// How far [`clip_value`] cuts.
#[derive(Clone, Copy)]
struct Bounds {
    string: usize,
    items: usize,
}

/// For what the harness never reads more of than its small fields.
const BODY: Bounds = Bounds {
    string: CLIP_STRING_BYTES,
    items: CLIP_ARRAY_ITEMS,
};
/// For everything else.
const TEXT: Bounds = Bounds {
    string: TEXT_BYTES,
    items: 1000,
};

/// The stored form of a redacted payload, and whether it is only its prefix (truncated): a tool's
/// response and a write's body clipped ([`clip_response`], `clip_write_input`), every other
/// string to [`TEXT_BYTES`], and the whole within [`PAYLOAD_BYTES`]. So no input makes a hook
/// hold the write lock to store megabytes. Clip after redaction: a secret cut in two at a clip
/// could pass the scanner.
pub fn stored_payload(
    mut raw: serde_json::Value,
    file_write: bool,
    original_len: impl FnOnce() -> usize,
) -> (String, bool) {
    if let Some(map) = raw.as_object_mut() {
        map.remove(ANNOTATION);
    }
    if let Some(response) = raw.get_mut("tool_response") {
        clip_response(response);
    }
    if file_write {
        clip_write_input(&mut raw);
    }
    let mut text = String::new();
    for bounds in [TEXT, BODY] {
        clip_value(&mut raw, bounds, &mut false);
        text = raw.to_string();
        if text.len() <= PAYLOAD_BYTES {
            return (text, false);
        }
    }
    (prefix_payload(text.as_bytes(), original_len() as u64), true)
}

/// Bounds the stored copy of a tool's response. What a tool gave back (a file read whole, an
/// edited file's original text, a command's output, a copy of what was written) is what makes
/// payloads large, and nothing the harness does reads more than its small fields. So the write
/// lock is not held to store megabytes nobody reads, and the store does not grow a copy of every
/// file read. Each string keeps its first [`CLIP_STRING_BYTES`], each array its first
/// [`CLIP_ARRAY_ITEMS`] (give or take the 64 a note costs), and what was left is counted in a
/// note where it was; a response still over [`RESPONSE_BYTES`] (many small keys) becomes the
/// first [`CLIP_STRING_BYTES`] of its JSON text. The stored copy is never larger than what came.
pub fn clip_response(response: &mut serde_json::Value) {
    // Quoted, a string can grow six times (`\u0001`): under an eighth of the bound, the text
    // surely fits and need not be written out to be measured.
    if clip_value(response, BODY, &mut false) > RESPONSE_BYTES / 8 {
        let text = response.to_string();
        if text.len() <= RESPONSE_BYTES {
            return;
        }
        let head = crate::text::head(&text, CLIP_STRING_BYTES);
        *response = serde_json::json!({
            "clipped": format!("[agent-harness: {} of {} bytes stored]", head.len(), text.len()),
            "head": head,
        });
    }
}

/// Bounds the stored copy of a file-writing tool's input the same way, strings and arrays (its
/// path and options are short and stay whole). The written text is on disk, and the review
/// reads the change from git; what the store needs of it is the number of lines written, for the
/// review's changed-lines trigger (`reviews::lines_since`). So when a body is clipped, that
/// number is counted first, as the store would count it from the whole input, and kept under
/// [`ANNOTATION`].
fn clip_write_input(payload: &mut serde_json::Value) {
    let Some(input) = payload.get_mut("tool_input") else {
        return;
    };
    let lines = written_lines(input);
    let mut clipped = false;
    clip_value(input, BODY, &mut clipped);
    if clipped && let Some(map) = payload.as_object_mut() {
        map.insert(ANNOTATION.into(), serde_json::json!({"lines": lines}));
    }
}

/// The lines a file write adds or replaces, counted as `reviews::lines_since` counts them in a
/// stored input: newlines + 1 of the first of `content`, `new_string` and `edits` (as JSON text)
/// that is there.
fn written_lines(input: &serde_json::Value) -> u64 {
    use serde_json::Value;
    // SQLite's `length` of a text stops at its first NUL, so only the newlines before it count.
    let newlines = |s: &str| {
        let s = s.split('\0').next().unwrap_or("");
        s.bytes().filter(|&b| b == b'\n').count() as u64
    };
    let body = ["content", "new_string", "edits"]
        .iter()
        .find_map(|k| input.get(k).filter(|v| !v.is_null()));
    1 + match body {
        Some(Value::String(s)) => newlines(s),
        Some(other) => newlines(&other.to_string()),
        None => 0,
    }
}

/// The note that ends a clipped string, around the count of bytes left out.
const BYTES_NOTE: (&str, &str) = ("… [agent-harness: ", " more bytes not stored]");
/// The note that ends a clipped array (its last item), around the count of items left out.
const ITEMS_NOTE: (&str, &str) = ("[agent-harness: ", " more items not stored]");

/// A clip note with the count `n`.
fn note((start, end): (&str, &str), n: usize) -> String {
    format!("{start}{n}{end}")
}

/// Where the clip note that ends `s` starts, and the count it gives, if `s` ends with one.
fn noted(s: &str, (start, end): (&str, &str)) -> Option<(usize, usize)> {
    let rest = s.strip_suffix(end)?;
    let at = rest.rfind(start)?;
    let n = rest[at + start.len()..].parse().ok()?;
    Some((at, n))
}

/// Clips one value in place; returns about what it costs stored, and sets `clipped` when it cut.
fn clip_value(value: &mut serde_json::Value, bounds: Bounds, clipped: &mut bool) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            // Worth a note only when it saves more than the note (at most 62 bytes) and a
            // write's line count (at most 45) cost: the stored copy never grows.
            if s.len() > bounds.string + 128 {
                // Clipped again (a payload still too big): the note counts both cuts.
                let (body, earlier) = match noted(s, BYTES_NOTE) {
                    Some((at, n)) => (at, n),
                    None => (s.len(), 0),
                };
                let cut = crate::text::head(&s[..body], bounds.string).len();
                let left = (body - cut).saturating_add(earlier);
                s.truncate(cut);
                s.push_str(&note(BYTES_NOTE, left));
                *clipped = true;
            }
            s.len() + 2
        }
        Value::Array(items) => {
            let mut left = items.len().saturating_sub(bounds.items);
            // Each item left out saves two bytes at least: 64 of them pay for the note and a
            // write's line count.
            if left >= 64 {
                let earlier = items
                    .last()
                    .and_then(Value::as_str)
                    .and_then(|t| noted(t, ITEMS_NOTE))
                    .filter(|&(at, _)| at == 0);
                // The earlier note is one of the items left out, and stands for `n` more.
                if let Some((_, n)) = earlier {
                    left = (left - 1).saturating_add(n);
                }
                items.truncate(bounds.items);
                items.push(Value::String(note(ITEMS_NOTE, left)));
                *clipped = true;
            }
            items
                .iter_mut()
                .map(|v| clip_value(v, bounds, clipped))
                .sum::<usize>()
                + 2
        }
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| k.len() + 3 + clip_value(v, bounds, clipped))
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
        let file_write = event
            .tool
            .as_ref()
            .is_some_and(|t| t.class == ToolClass::FileWrite);
        // Measured only for a payload stored as its prefix: its size as it came.
        let (payload, truncated) = stored_payload(raw, file_write, || p.raw.to_string().len());
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
            truncated,
            payload,
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
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn recorded(payload: &Value) -> Recording {
        let p = crate::payload::HookPayload::view(payload).unwrap();
        Recording::of(&Event::reduce(p), 0, None)
    }

    fn stored(payload: Value) -> Value {
        serde_json::from_str(&recorded(&payload).payload).unwrap()
    }

    /// The part of a clipped string that was kept, and the bytes its note says were left.
    fn kept_and_left(clipped: &str) -> (&str, usize) {
        let (kept, note) = clipped.rsplit_once("… [agent-harness: ").unwrap();
        (kept, note.split(' ').next().unwrap().parse().unwrap())
    }

    #[test]
    fn a_tool_response_is_stored_clipped() {
        let file = "ä".repeat(1_500_000); // 3 MB of two-byte characters
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Read", "tool_use_id": "t1", "tool_input": {"file_path": "/tmp/a"},
            "tool_response": {"type": "text", "file": {"filePath": "/tmp/a", "content": file},
                              "lines": (0..5000).map(|i| format!("{i}")).collect::<Vec<_>>()},
        }));
        assert_eq!(stored["tool_input"], json!({"file_path": "/tmp/a"}));
        let r = &stored["tool_response"];
        assert_eq!(
            (r["type"].as_str(), r["file"]["filePath"].as_str()),
            (Some("text"), Some("/tmp/a"))
        );
        let (kept, left) = kept_and_left(r["file"]["content"].as_str().unwrap());
        assert!(
            kept.len() <= CLIP_STRING_BYTES && file.starts_with(kept),
            "{}",
            kept.len()
        );
        assert_eq!(kept.len() + left, file.len());
        let lines = r["lines"].as_array().unwrap();
        assert_eq!(lines.len(), CLIP_ARRAY_ITEMS + 1);
        assert_eq!(
            lines[CLIP_ARRAY_ITEMS],
            "[agent-harness: 4900 more items not stored]"
        );
        assert!(serde_json::to_string(r).unwrap().len() < 2 * CLIP_STRING_BYTES);
        assert!(stored.get(ANNOTATION).is_none());
    }

    #[test]
    fn a_write_body_is_stored_clipped_with_its_lines_counted() {
        let body = "fn f() {}\n".repeat(200_000); // 2 MB, 200,000 newlines
        for (tool, input) in [
            ("Write", json!({"file_path": "/tmp/a", "content": body})),
            (
                "Edit",
                json!({"file_path": "/tmp/a", "old_string": body, "new_string": body}),
            ),
            (
                "write_file",
                json!({"file_path": "/tmp/a", "content": body}),
            ),
        ] {
            for event in ["PreToolUse", "PostToolUse"] {
                let stored = stored(json!({
                    "session_id": "s", "cwd": "/tmp", "hook_event_name": event,
                    "tool_name": tool, "tool_use_id": "t1", "tool_input": input,
                    "tool_response": {"filePath": "/tmp/a"}, ANNOTATION: {"lines": 1},
                }));
                let i = &stored["tool_input"];
                assert_eq!(i["file_path"], "/tmp/a", "{tool}");
                let text = i
                    .get("content")
                    .or(i.get("new_string"))
                    .unwrap()
                    .as_str()
                    .unwrap();
                let (kept, left) = kept_and_left(text);
                assert!(kept.len() <= CLIP_STRING_BYTES && body.starts_with(kept));
                assert_eq!(kept.len() + left, body.len());
                assert_eq!(
                    stored[ANNOTATION],
                    json!({"lines": 200_001}),
                    "{tool} {event}"
                );
                assert!(stored.to_string().len() < 3 * CLIP_STRING_BYTES, "{tool}");
            }
        }
        // A small write is stored as it came, and a client's own annotation is not kept.
        let small = json!({"session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Write", "tool_use_id": "t2",
            "tool_input": {"file_path": "/tmp/b", "content": "one\ntwo\n"}, ANNOTATION: {"lines": 9}});
        let stored = stored(small.clone());
        assert_eq!(stored["tool_input"], small["tool_input"]);
        assert!(stored.get(ANNOTATION).is_none(), "{stored}");
    }

    #[test]
    fn a_secret_at_the_clip_is_redacted_before_it_is_cut() {
        // The key straddles the cut: clipped first, its head would no longer look like a key.
        let key = "AKIAIOSFODNN7EXAMPLE";
        let text = format!(
            "{}{key} tail{}",
            "x".repeat(CLIP_STRING_BYTES - 10),
            "y".repeat(10_000)
        );
        for (tool, input, response) in [
            ("Bash", json!({"command": "env"}), json!({"stdout": text})),
            (
                "Write",
                json!({"file_path": "/tmp/a", "content": text}),
                json!({}),
            ),
        ] {
            let stored = stored(json!({
                "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse",
                "tool_name": tool, "tool_use_id": "t2", "tool_input": input,
                "tool_response": response,
            }))
            .to_string();
            assert!(
                !stored.contains("AKIAIOSFODNN"),
                "{tool}: {}",
                &stored[..300]
            );
            assert!(stored.contains("[agent-harness: "), "{tool}: clipped");
        }
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

    #[test]
    fn other_long_text_is_stored_to_its_bound_and_a_plan_whole() {
        let plan = "1. do the thing\n".repeat(2000); // 32 KB: the review reads 8,000 characters
        let stored = stored(json!({
            "session_id": "s", "cwd": "/tmp", "hook_event_name": "PreToolUse",
            "tool_name": "ExitPlanMode", "tool_use_id": "t1", "tool_input": {"plan": plan}}));
        assert_eq!(stored["tool_input"]["plan"], plan.as_str());
        let long = "é".repeat(1_000_000);
        for (event, tool, input) in [
            ("UserPromptSubmit", None, None),
            (
                "PreToolUse",
                Some("Bash"),
                Some(json!({"command": format!("echo {long}")})),
            ),
            (
                "PreToolUse",
                Some("mcp__db__query"),
                Some(json!({"sql": long})),
            ),
        ] {
            let mut p = json!({"session_id": "s", "cwd": "/tmp", "hook_event_name": event,
                               "prompt": long});
            if let (Some(tool), Some(input)) = (tool, input) {
                p["tool_name"] = json!(tool);
                p["tool_input"] = input;
            }
            let rec = recorded(&p);
            assert!(
                !rec.truncated && rec.payload.len() <= 3 * TEXT_BYTES,
                "{event}"
            );
            let stored: Value = serde_json::from_str(&rec.payload).unwrap();
            let (kept, left) = kept_and_left(stored["prompt"].as_str().unwrap());
            assert_eq!(kept.len() + left, long.len());
            assert!(kept.len() <= TEXT_BYTES && kept.len() > TEXT_BYTES - 4);
        }
    }

    #[test]
    fn a_payload_still_too_big_once_clipped_is_stored_as_its_prefix() {
        // Many long strings: each within the text bound, all of them over the payload's.
        let many: Vec<String> = (0..60)
            .map(|i| format!("{i}{}", "x".repeat(60_000)))
            .collect();
        let rec = recorded(&json!({"session_id": "s", "cwd": "/tmp",
            "hook_event_name": "PreToolUse", "tool_name": "mcp__x__y", "tool_input": {"a": many}}));
        assert!(
            !rec.truncated && rec.payload.len() <= PAYLOAD_BYTES,
            "{}",
            rec.payload.len()
        );
        // Many small keys: nothing to clip.
        let wide: serde_json::Map<String, Value> =
            (0..200_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let rec = recorded(&json!({"session_id": "s", "cwd": "/tmp",
            "hook_event_name": "PreToolUse", "tool_name": "mcp__x__y", "tool_input": wide}));
        assert!(
            rec.truncated && rec.payload.len() <= PAYLOAD_BYTES,
            "{}",
            rec.payload.len()
        );
        let stored: Value = serde_json::from_str(&rec.payload).unwrap();
        assert!(
            stored["prefix"]
                .as_str()
                .unwrap()
                .starts_with("{\"session_id\":\"s\"")
        );
    }

    #[test]
    fn a_stored_write_is_never_larger_than_it_came() {
        // Just past the clip, the note and the line count must still be paid for by the cut.
        for n in (4096..4400).chain([9_999, 100_000]) {
            for (tool, input) in [
                (
                    "Write",
                    json!({"file_path": "/tmp/a", "content": "a".repeat(n)}),
                ),
                (
                    "MultiEdit",
                    json!({"file_path": "/tmp/a", "edits": vec![1; n / 40]}),
                ),
            ] {
                let p = json!({"session_id": "s", "cwd": "/tmp", "hook_event_name": "PreToolUse",
                               "tool_name": tool, "tool_use_id": "t", "tool_input": input});
                let rec = recorded(&p);
                assert!(rec.payload.len() <= p.to_string().len(), "{tool} of {n}");
            }
        }
    }

    #[test]
    fn a_string_or_array_clipped_twice_counts_all_it_left_out() {
        // Ten long strings: each clipped to the text bound, the whole still over the payload's.
        let long: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(99_999)))
            .collect();
        let items: Vec<String> = (0..2000).map(|i| format!("{i:0>300}")).collect();
        for input in [json!({"a": long}), json!({"a": items})] {
            let rec = recorded(&json!({"session_id": "s", "cwd": "/tmp",
                "hook_event_name": "PreToolUse", "tool_name": "mcp__x__y", "tool_input": input}));
            assert!(!rec.truncated && rec.payload.len() <= PAYLOAD_BYTES);
            let stored: Value = serde_json::from_str(&rec.payload).unwrap();
            let a = stored["tool_input"]["a"].as_array().unwrap();
            match a[0].as_str().unwrap() {
                first if first.len() > 1000 => {
                    for s in a {
                        let (kept, left) = kept_and_left(s.as_str().unwrap());
                        assert_eq!(
                            (kept.len(), kept.len() + left),
                            (CLIP_STRING_BYTES, 100_000)
                        );
                    }
                }
                _ => {
                    assert_eq!(a.len(), CLIP_ARRAY_ITEMS + 1);
                    assert_eq!(
                        a[CLIP_ARRAY_ITEMS],
                        "[agent-harness: 1900 more items not stored]"
                    );
                }
            }
        }
    }

    fn write_input(tool: &str, body: &str, edits: usize) -> Value {
        match tool {
            "Write" | "write_file" => json!({"file_path": "/tmp/w", "content": body}),
            "MultiEdit" => json!({"file_path": "/tmp/w", "edits": (0..edits)
                .map(|i| json!({"old_string": format!("o{i}"), "new_string": body}))
                .collect::<Vec<_>>()}),
            _ => json!({"file_path": "/tmp/w", "old_string": "o", "new_string": body}),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The review's changed-lines count is the same whether a write was stored clipped or
        /// whole (stored whole here by hand, as before clipping).
        #[test]
        fn a_clipped_write_counts_the_lines_the_whole_one_did(
            tool in prop_oneof![Just("Write"), Just("Edit"), Just("MultiEdit"),
                                Just("replace"), Just("write_file")],
            line in "[a-z{}\"\\\\ é\\x00]{0,60}",
            lines in 0usize..500,
            tail in "[a-z]{0,3}",
            edits in 0usize..140,
        ) {
            let body = format!("{}{tail}", format!("{line}\n").repeat(lines));
            let dir = std::env::temp_dir().join(format!(
                "ah-lines-{}-{}", std::process::id(), rand_suffix()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut store = crate::store::Store::open(&dir.join("h.db"),
                std::time::Duration::from_secs(1)).unwrap();
            let payload = |session: &str| json!({"session_id": session, "cwd": "/tmp",
                "hook_event_name": "PostToolUse", "tool_name": tool, "tool_use_id": "t",
                "tool_input": write_input(tool, &body, edits)});
            let rec = recorded(&payload("short"));
            let whole = payload("whole").to_string();
            store.write(|tx| {
                rec.apply(tx).unwrap();
                tx.execute("INSERT INTO events (ts_ms, session_id, agent, event, tool_name, \
                    payload) VALUES (0, 'whole', 'claude', 'PostToolUse', ?1, ?2)",
                    rusqlite::params![tool, whole]).unwrap();
                Ok(())
            }).unwrap();
            let conn = store.reader().unwrap();
            let count = |s| crate::store::reviews::lines_since(conn, s, 0).unwrap();
            prop_assert_eq!(count("short"), count("whole"));
            prop_assert!(rec.payload.len() <= whole.len());
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}
