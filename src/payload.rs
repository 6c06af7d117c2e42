//! Wire types: the hook stdin JSON exactly as Claude Code (2.1.x) and Gemini CLI (0.61.x) send it.
//!
//! Owns reading and reading only: a bounded read of stdin and a lenient view of the JSON. Every
//! field except `hook_event_name` may be missing, null or of an unexpected type; such a field
//! reads as `None` instead of failing the whole payload, because both clients add and reshape
//! fields from release to release. Only input that is not a JSON object naming its event is an
//! error. Must not decide anything: reducing a payload to what the harness acts on is `event.rs`.

use std::io::{self, Read};

use serde_json::Value;

/// The most bytes of a payload the harness keeps. Larger payloads (a huge Write, a tool response
/// of many megabytes) are drained and recorded as truncated: parsing them would cost more than a
/// hook call may.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// What a bounded read of stdin produced.
#[derive(Debug)]
pub struct Input {
    /// The bytes kept: all of them, or the first [`MAX_PAYLOAD_BYTES`] when `truncated`.
    pub bytes: Vec<u8>,
    /// How many bytes arrived in all.
    pub total_len: u64,
    /// True when `total_len` exceeded the bound and only a prefix was kept.
    pub truncated: bool,
    /// When `truncated`: the payload's small fields (see [`skeleton`]), read from the whole
    /// stream, or `None` when the stream was not a JSON object or exceeded
    /// [`MAX_SKELETON_BYTES`].
    pub skeleton: Option<Value>,
    /// When `truncated`: the stream was still a well-formed JSON object when the read-through
    /// stopped at [`MAX_SKELETON_BYTES`] (so its small fields may be salvaged from the prefix).
    pub skeleton_cut: bool,
}

/// The most bytes read through for the small fields of a payload over [`MAX_PAYLOAD_BYTES`].
/// Beyond that the payload is drained unread.
pub const MAX_SKELETON_BYTES: u64 = 64 * 1024 * 1024;

/// Reads stdin up to `limit` bytes and drains the rest, so the client never sees a broken pipe.
/// A payload over the limit is read through once for its small fields ([`skeleton`]), so that a
/// huge Write is still checked against file locks.
pub fn read_bounded(mut reader: impl Read, limit: usize) -> io::Result<Input> {
    let mut bytes = Vec::with_capacity(8 * 1024);
    let kept = reader.by_ref().take(limit as u64).read_to_end(&mut bytes)? as u64;
    let mut total_len = kept;
    let mut skeleton_of = None;
    let mut skeleton_cut = false;
    if bytes.len() == limit {
        let mut rest = Counted {
            inner: reader.by_ref(),
            n: 0,
        };
        let stream = io::BufReader::with_capacity(
            64 * 1024,
            io::Cursor::new(&bytes).chain(rest.by_ref().take(MAX_SKELETON_BYTES)),
        );
        let read = skeleton(stream);
        skeleton_cut = matches!(&read, Err(e) if e.is_eof()) && rest.n >= MAX_SKELETON_BYTES;
        skeleton_of = read.ok();
        total_len += rest.n + drain(reader)?;
    }
    let truncated = total_len > kept;
    Ok(Input {
        truncated,
        skeleton: skeleton_of.filter(|_| truncated),
        skeleton_cut: skeleton_cut && truncated,
        bytes,
        total_len,
    })
}

/// Reads `reader` to its end, unkept; returns how many bytes it had. Its buffer is on the heap: a
/// 64 KiB array in `read_bounded`'s frame cost every hook call 16 page faults (the stack probe
/// touches each page of the frame), though only a payload over the bound gets here.
fn drain(mut reader: impl Read) -> io::Result<u64> {
    let mut sink = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match reader.read(&mut sink) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A reader that counts what passed through it.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Top-level fields a skeleton keeps: the small ones that identify and classify an event.
const SKELETON_FIELDS: &[&str] = &[
    "session_id",
    "transcript_path",
    "cwd",
    "hook_event_name",
    "timestamp",
    "prompt_id",
    "permission_mode",
    "agent_id",
    "agent_type",
    "tool_name",
    "tool_use_id",
    "duration_ms",
    "is_interrupt",
];

/// `tool_input` fields a skeleton keeps: the paths a file lock is checked against.
const SKELETON_TOOL_FIELDS: &[&str] = &["file_path", "notebook_path"];

/// The small fields of a JSON object read from `reader` without keeping the rest: top-level
/// identification fields and `tool_input`'s path arguments, at their own depth only (a
/// `"file_path"` inside written content is never taken for the argument). Large strings are
/// skipped, not held. Fails when the stream is not one JSON object.
pub fn skeleton(reader: impl Read) -> serde_json::Result<Value> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let value = de.deserialize_map(Picker {
        keep: SKELETON_FIELDS,
        top: true,
    })?;
    de.end()?;
    Ok(value)
}

/// Visits one JSON object, keeping the `keep` keys whose values are scalars (and, at the top,
/// `tool_input`'s own picks).
struct Picker {
    keep: &'static [&'static str],
    top: bool,
}

impl<'de> serde::de::Visitor<'de> for Picker {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.top && key == "tool_input" {
                let picked = map.next_value_seed(MaybeObject)?;
                out.insert(key, picked);
            } else if self.keep.contains(&key.as_str()) {
                let v: Value = map.next_value()?;
                if !(v.is_array() || v.is_object()) {
                    out.insert(key, v);
                }
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }
}

/// `tool_input`: its path fields when it is an object, else null (whatever it is, skipped).
struct MaybeObject;

impl<'de> serde::de::DeserializeSeed<'de> for MaybeObject {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MaybeObject {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Picker {
            keep: SKELETON_TOOL_FIELDS,
            top: false,
        }
        .visit_map(map)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Why a payload could not be read as a hook payload.
#[derive(Debug)]
pub enum PayloadError {
    /// Nothing arrived on stdin.
    Empty,
    /// The bytes are not JSON (or not UTF-8).
    Malformed(String),
    /// JSON, but not an object.
    NotAnObject,
    /// An object without a string `hook_event_name`.
    NoEventName,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::Empty => {
                f.write_str("empty hook input (expected one JSON object on stdin)")
            }
            PayloadError::Malformed(e) => write!(f, "malformed hook input: {e}"),
            PayloadError::NotAnObject => f.write_str("hook input is JSON but not an object"),
            PayloadError::NoEventName => f.write_str("hook input has no \"hook_event_name\""),
        }
    }
}

/// Parses stdin bytes into a JSON value that is known to be a hook payload.
pub fn parse(bytes: &[u8]) -> Result<Value, PayloadError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::Empty);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(PayloadError::NotAnObject);
    };
    if !matches!(obj.get("hook_event_name"), Some(Value::String(_))) {
        return Err(PayloadError::NoEventName);
    }
    Ok(value)
}

/// One hook call's stdin, field for field. Borrowed from the parsed JSON value.
///
/// Claude Code sends the common fields `session_id`, `transcript_path`, `cwd`,
/// `hook_event_name` always, `prompt_id` after the first prompt, `permission_mode` and `effort` on
/// tool-context events, `agent_id`/`agent_type` inside subagents. Gemini CLI sends `session_id`,
/// `transcript_path`, `cwd`, `hook_event_name` and `timestamp` on every event.
#[derive(Debug, Clone, Copy)]
pub struct HookPayload<'a> {
    /// The raw JSON object, for fields read on demand and for storage.
    pub raw: &'a Value,
    /// The event: Claude Code's (`PreToolUse`, ...) or Gemini CLI's (`BeforeTool`, ...). Always set.
    pub hook_event_name: &'a str,
    /// Claude: the session UUID. Gemini: its session id (a UUID, or the id the harness chose).
    pub session_id: Option<&'a str>,
    /// Path of the client's transcript file; the file may not exist yet.
    pub transcript_path: Option<&'a str>,
    /// The client's working directory when the hook fired.
    pub cwd: Option<&'a str>,
    /// Gemini CLI only: ISO-8601 time of the event. Its presence marks a Gemini payload.
    pub timestamp: Option<&'a str>,
    /// Claude: one UUID per user prompt, after the first prompt.
    pub prompt_id: Option<&'a str>,
    /// Claude, tool-context events: `default`, `acceptEdits`, `bypassPermissions`, `plan`, ...
    pub permission_mode: Option<&'a str>,
    /// Claude: set when the hook fires inside a subagent, and on SubagentStart/Stop.
    pub agent_id: Option<&'a str>,
    /// Claude: the subagent type (`Explore`, `general-purpose`, `""` for the compaction agent).
    pub agent_type: Option<&'a str>,
    /// SessionStart: `startup|resume|clear|compact` (Claude), `startup|resume|clear` (Gemini).
    pub source: Option<&'a str>,
    /// SessionStart (Claude, sometimes): the model id, e.g. `claude-opus-4-8`.
    pub model: Option<&'a str>,
    /// UserPromptSubmit / BeforeAgent / AfterAgent / UserPromptExpansion: the prompt as typed.
    pub prompt: Option<&'a str>,
    /// Tool events: `Write`, `Edit`, `Bash`, `Agent`, `mcp__s__t` (Claude); `write_file`, ... (Gemini).
    pub tool_name: Option<&'a str>,
    /// Tool events: the tool's arguments, an object whose shape depends on the tool.
    pub tool_input: Option<&'a Value>,
    /// PostToolUse / AfterTool: the tool's result object.
    pub tool_response: Option<&'a Value>,
    /// Claude tool events: the tool call id (`toolu_...`). Gemini sends none.
    pub tool_use_id: Option<&'a str>,
    /// Claude PostToolUse/PostToolUseFailure (2.1.119+): how long the tool ran.
    pub duration_ms: Option<u64>,
    /// PostToolUseFailure: the failure text (`Exit code 1`). StopFailure: the error kind
    /// (`rate_limit`, `overloaded`, `authentication_failed`, `billing_error`, ...).
    pub error: Option<&'a str>,
    /// PostToolUseFailure: true when the user interrupted the tool.
    pub is_interrupt: Option<bool>,
    /// SessionEnd: `clear|resume|logout|prompt_input_exit|other|...` (Claude), `exit|...` (Gemini).
    pub reason: Option<&'a str>,
    /// PreCompact/PostCompact (Claude), PreCompress (Gemini): `manual|auto`.
    pub trigger: Option<&'a str>,
    /// PreCompact: the text after `/compact`, or null.
    pub custom_instructions: Option<&'a str>,
    /// PostCompact: the summary the compaction produced.
    pub compact_summary: Option<&'a str>,
    /// Stop/SubagentStop/AfterAgent: true when this turn already continues because a hook blocked.
    pub stop_hook_active: Option<bool>,
    /// Stop/SubagentStop/StopFailure: the last assistant text.
    pub last_assistant_message: Option<&'a str>,
    /// Gemini AfterAgent: the model's reply to `prompt`.
    pub prompt_response: Option<&'a str>,
    /// Notification: `permission_prompt`, `idle_prompt`, ... (Claude), `ToolPermission` (Gemini).
    pub notification_type: Option<&'a str>,
    /// Notification: the text shown to the user.
    pub message: Option<&'a str>,
    /// UserPromptExpansion: the slash command's name, without the slash.
    pub command_name: Option<&'a str>,
    /// UserPromptExpansion: the raw argument text as typed.
    pub command_args: Option<&'a str>,
    /// SubagentStop: the subagent's own transcript.
    pub agent_transcript_path: Option<&'a str>,
    /// Stop / SubagentStop (Claude Code 2.1.332 on): in-flight background work of the session,
    /// `[{id, type, status, description, agent_type?, command?}]`; a running background agent is
    /// `type: "subagent"` whose `id` is the `agent_id` of its SubagentStart. Absent on older
    /// releases; an empty array when nothing is in flight.
    pub background_tasks: Option<&'a Value>,
    /// PreModelSwitch / PostModelSwitch: the model switched away from.
    pub from_model: Option<&'a str>,
    /// PreModelSwitch / PostModelSwitch: the model switched to.
    pub to_model: Option<&'a str>,
    /// DirectoryAdded: the directory added to the session's roots (absolute).
    pub directory: Option<&'a str>,
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

impl<'a> HookPayload<'a> {
    /// A lenient view of a value that [`parse`] accepted. Returns `None` for anything else.
    pub fn view(raw: &'a Value) -> Option<Self> {
        let hook_event_name = str_field(raw, "hook_event_name")?;
        let s = |k| str_field(raw, k);
        Some(HookPayload {
            raw,
            hook_event_name,
            session_id: s("session_id").filter(|s| !s.is_empty()),
            transcript_path: s("transcript_path"),
            cwd: s("cwd"),
            timestamp: s("timestamp"),
            prompt_id: s("prompt_id"),
            permission_mode: s("permission_mode"),
            agent_id: s("agent_id"),
            agent_type: s("agent_type"),
            source: s("source"),
            model: s("model"),
            prompt: s("prompt"),
            tool_name: s("tool_name"),
            tool_input: raw.get("tool_input").filter(|v| v.is_object()),
            tool_response: raw.get("tool_response").filter(|v| !v.is_null()),
            tool_use_id: s("tool_use_id"),
            duration_ms: raw.get("duration_ms").and_then(Value::as_u64),
            error: s("error"),
            is_interrupt: raw.get("is_interrupt").and_then(Value::as_bool),
            reason: s("reason"),
            trigger: s("trigger"),
            custom_instructions: s("custom_instructions"),
            compact_summary: s("compact_summary"),
            stop_hook_active: raw.get("stop_hook_active").and_then(Value::as_bool),
            last_assistant_message: s("last_assistant_message"),
            prompt_response: s("prompt_response"),
            notification_type: s("notification_type"),
            message: s("message"),
            command_name: s("command_name"),
            command_args: s("command_args"),
            agent_transcript_path: s("agent_transcript_path"),
            background_tasks: raw.get("background_tasks").filter(|v| v.is_array()),
            from_model: s("from_model"),
            to_model: s("to_model"),
            directory: s("directory"),
        })
    }

    /// The ids of background agents still running at a Stop (`background_tasks` entries of type
    /// `subagent` whose status is not finished), at most `limit` of them.
    pub fn running_subagents(&self, limit: usize) -> Vec<&'a str> {
        self.background_tasks
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| str_field(t, "type") == Some("subagent"))
            .filter(|t| {
                !matches!(
                    str_field(t, "status"),
                    Some("completed" | "failed" | "killed" | "stopped")
                )
            })
            .filter_map(|t| str_field(t, "id"))
            .take(limit)
            .collect()
    }

    /// A string argument of the tool call (`file_path`, `command`, `notebook_path`, ...).
    pub fn tool_arg(&self, key: &str) -> Option<&'a str> {
        self.tool_input.and_then(|v| str_field(v, key))
    }
}

/// The small fields of a payload too large even to read through (over [`MAX_SKELETON_BYTES`]),
/// salvaged from its prefix (see [`salvage_field`]): the same shape as [`skeleton`]'s answer, or
/// None when the prefix does not name its event. Clients send the identifying fields, and a
/// tool's path argument, before the content, so a prefix of megabytes holds them.
pub fn salvage_skeleton(prefix: &[u8]) -> Option<Value> {
    let mut out = serde_json::Map::new();
    for key in SKELETON_FIELDS {
        if let Some(v) = salvage_field(prefix, key) {
            out.insert((*key).to_owned(), Value::String(v.to_owned()));
        }
    }
    out.get("hook_event_name")?;
    let mut tool = serde_json::Map::new();
    for key in SKELETON_TOOL_FIELDS {
        if let Some(v) = salvage_field(prefix, key) {
            tool.insert((*key).to_owned(), Value::String(v.to_owned()));
        }
    }
    out.insert("tool_input".into(), Value::Object(tool));
    Some(Value::Object(out))
}

/// Finds `"key":"value"` in the prefix of a payload too large to parse, so a truncated event can
/// still be attributed to its session. Only plain (unescaped) string values are taken.
pub fn salvage_field<'a>(prefix: &'a [u8], key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let text = std::str::from_utf8(prefix)
        .or_else(|e| std::str::from_utf8(&prefix[..e.valid_up_to()]))
        .ok()?;
    let at = text.find(&needle)? + needle.len();
    let rest = text[at..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes().get(end) == Some(&b'"')).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read_keeps_prefix_and_counts_the_rest() {
        let data = [b'x'; 100];
        let input = read_bounded(&data[..], 10).unwrap();
        assert_eq!(input.bytes.len(), 10);
        assert_eq!(input.total_len, 100);
        assert!(input.truncated);

        let input = read_bounded(&data[..], 100).unwrap();
        assert_eq!(input.bytes.len(), 100);
        assert!(!input.truncated);
    }

    #[test]
    fn parse_rejects_what_is_not_a_hook_payload() {
        assert!(matches!(parse(b""), Err(PayloadError::Empty)));
        assert!(matches!(parse(b" \n"), Err(PayloadError::Empty)));
        assert!(matches!(parse(b"{"), Err(PayloadError::Malformed(_))));
        assert!(matches!(parse(b"[1]"), Err(PayloadError::NotAnObject)));
        assert!(matches!(
            parse(b"{\"a\":1}"),
            Err(PayloadError::NoEventName)
        ));
        assert!(matches!(
            parse(b"{\"hook_event_name\":3}"),
            Err(PayloadError::NoEventName)
        ));
        assert!(parse(b"{\"hook_event_name\":\"X\"}").is_ok());
    }

    #[test]
    fn view_tolerates_wrong_types_and_unknown_fields() {
        let v: Value = serde_json::from_str(
            r#"{"hook_event_name":"PreToolUse","session_id":"s","model":{"id":"x"},
               "duration_ms":"12","tool_input":"nope","brand_new_field":[1,2]}"#,
        )
        .unwrap();
        let p = HookPayload::view(&v).unwrap();
        assert_eq!(p.session_id, Some("s"));
        assert_eq!(p.model, None);
        assert_eq!(p.duration_ms, None);
        assert!(p.tool_input.is_none());
    }

    #[test]
    fn salvage_finds_plain_string_fields() {
        let prefix = br#"{"session_id": "abc-1","hook_event_name":"PostToolUse","tool_input":{"content":"xxxx"#;
        assert_eq!(salvage_field(prefix, "session_id"), Some("abc-1"));
        assert_eq!(
            salvage_field(prefix, "hook_event_name"),
            Some("PostToolUse")
        );
        assert_eq!(salvage_field(prefix, "cwd"), None);
        assert_eq!(
            salvage_field(br#"{"session_id":"a\"b"}"#, "session_id"),
            None
        );
    }
}
