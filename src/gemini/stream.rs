//! Gemini CLI's `-o stream-json` output (0.61): one JSON object per line, each with `type` and
//! `timestamp`. Owns parsing and folding the events into what a run produced; knows nothing of
//! processes.
//!
//! Events: `init {session_id, model}`, `message {role, content, delta?}`, `tool_use {tool_name,
//! tool_id, parameters}`, `tool_result {tool_id, status, output?, error?}`, `error {severity,
//! message}`, `result {status, error?, stats?}`. Unknown types and fields are ignored; a line that
//! is not JSON is counted, not fatal.

use serde::Deserialize;
use serde_json::Value;

/// One stream-json line.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    Init {
        #[serde(default)]
        session_id: Option<String>,
        #[serde(default)]
        model: Option<String>,
    },
    Message {
        #[serde(default)]
        role: Option<String>,
        #[serde(default)]
        content: String,
    },
    ToolUse {
        #[serde(default)]
        tool_name: String,
        #[serde(default)]
        tool_id: String,
        #[serde(default)]
        parameters: Value,
    },
    ToolResult {
        #[serde(default)]
        tool_id: String,
        #[serde(default)]
        status: String,
        #[serde(default)]
        error: Option<ErrorInfo>,
    },
    Error {
        #[serde(default)]
        severity: Option<String>,
        #[serde(default)]
        message: String,
    },
    Result {
        #[serde(default)]
        status: String,
        #[serde(default)]
        error: Option<ErrorInfo>,
        #[serde(default)]
        stats: Option<Stats>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorInfo {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// `result.stats`: token totals over every model the run used (the router's included).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Stats {
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cached: u64,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub tool_calls: u64,
    /// Per model name; only the keys are used (which models answered).
    #[serde(default)]
    pub models: serde_json::Map<String, Value>,
}

/// Everything a run's stdout said, folded.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub session_id: Option<String>,
    /// The model asked for (`auto` when Gemini routes).
    pub requested_model: Option<String>,
    /// The assistant's text, turns separated by a blank line, capped at the fold's limit with
    /// the end kept.
    pub text: String,
    /// How many assistant bytes were dropped from the start of `text` to respect the cap.
    pub text_dropped: usize,
    /// Model requests made, as far as the stream shows: one per assistant turn (a turn starts
    /// after the prompt and after each batch of tool results), plus the router's when the model
    /// was `auto`. stream-json carries no request counter; this is an estimate.
    pub requests: u64,
    /// Files the run wrote (write_file, replace calls that succeeded), as the model named them.
    pub files_written: Vec<String>,
    /// Write calls waiting for their result: (tool_id, path).
    pending_writes: Vec<(String, String)>,
    /// Tool calls and how many failed.
    pub tool_calls: u64,
    pub tool_failures: u64,
    /// Non-fatal `error` events (loop detection, blocked turns, ...).
    pub warnings: Vec<String>,
    /// The terminal `result` event, if the run got that far.
    pub result: Option<(String, Option<ErrorInfo>, Option<Stats>)>,
    /// Lines that were not stream-json.
    pub garbage_lines: u64,
    /// Lines too long to fold (over the runner's line bound), skipped unread.
    pub oversized_lines: u64,
    in_turn: bool,
    cap: usize,
}

impl Transcript {
    /// An empty fold that keeps at most `cap` bytes of assistant text (the end of it).
    pub fn with_cap(cap: usize) -> Transcript {
        Transcript {
            cap,
            ..Transcript::default()
        }
    }

    /// Folds one line of stdout.
    pub fn push_line(&mut self, line: &[u8]) {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        match serde_json::from_slice::<StreamEvent>(trimmed) {
            Ok(event) => self.push(event),
            Err(_) => self.garbage_lines += 1,
        }
    }

    pub fn push(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Init { session_id, model } => {
                if model.as_deref() == Some("auto") {
                    self.requests += 1;
                }
                self.session_id = session_id;
                self.requested_model = model;
            }
            StreamEvent::Message { role, content } => {
                if role.as_deref() != Some("assistant") {
                    return;
                }
                if !self.in_turn {
                    self.in_turn = true;
                    self.requests += 1;
                    if !self.text.is_empty() {
                        self.text.push_str("\n\n");
                    }
                }
                self.text.push_str(&content);
                self.enforce_cap();
            }
            StreamEvent::ToolUse {
                tool_name,
                tool_id,
                parameters,
            } => {
                if !self.in_turn {
                    // A turn that opened with a tool call, without text.
                    self.requests += 1;
                }
                self.in_turn = false;
                self.tool_calls += 1;
                if matches!(tool_name.as_str(), "write_file" | "replace")
                    && let Some(path) = parameters.get("file_path").and_then(Value::as_str)
                {
                    self.pending_writes.push((tool_id, path.to_owned()));
                }
            }
            StreamEvent::ToolResult {
                tool_id, status, ..
            } => {
                self.in_turn = false;
                let write = self
                    .pending_writes
                    .iter()
                    .position(|(id, _)| *id == tool_id)
                    .map(|i| self.pending_writes.swap_remove(i).1);
                if status != "success" {
                    self.tool_failures += 1;
                } else if let Some(path) = write
                    && !self.files_written.contains(&path)
                {
                    self.files_written.push(path);
                }
            }
            StreamEvent::Error { severity, message } => {
                self.warnings
                    .push(format!("{}: {message}", severity.unwrap_or_default()));
            }
            StreamEvent::Result {
                status,
                error,
                stats,
            } => {
                self.result = Some((status, error, stats));
            }
            StreamEvent::Other => {}
        }
    }

    fn enforce_cap(&mut self) {
        if self.cap == 0 || self.text.len() <= self.cap {
            return;
        }
        let mut cut = self.text.len() - self.cap;
        while !self.text.is_char_boundary(cut) {
            cut += 1;
        }
        self.text.drain(..cut);
        self.text_dropped += cut;
    }

    /// True when the run ended with a successful `result`.
    pub fn succeeded(&self) -> bool {
        matches!(&self.result, Some((status, _, _)) if status == "success")
    }

    pub fn stats(&self) -> Option<&Stats> {
        self.result.as_ref().and_then(|(_, _, s)| s.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines recorded from the real Gemini CLI 0.61.0 (../shared/reference/gemini-cli.md).
    const TOOL_RUN: &str = r#"{"type":"init","timestamp":"2026-11-21T10:36:01.187Z","session_id":"6fcc6d21-a9ab-4ce7-874c-f37c95b11e79","model":"gemini-2.5-flash"}
{"type":"message","timestamp":"2026-11-21T10:36:01.189Z","role":"user","content":"summarize README"}
{"type":"message","timestamp":"2026-11-21T10:36:01.223Z","role":"assistant","content":"Let me read it.","delta":true}
{"type":"tool_use","timestamp":"2026-11-21T10:36:01.282Z","tool_name":"read_file","tool_id":"read_file__read_file_1795257361223_0","parameters":{"file_path":"README.md"}}
{"type":"tool_result","timestamp":"2026-11-21T10:36:01.349Z","tool_id":"read_file__read_file_1795257361223_0","status":"success","output":""}
{"type":"message","timestamp":"2026-11-21T10:36:01.361Z","role":"assistant","content":"The README says Demo project.","delta":true}
{"type":"result","timestamp":"2026-11-21T10:36:01.367Z","status":"success","stats":{"total_tokens":530,"input_tokens":500,"output_tokens":30,"cached":0,"input":500,"duration_ms":180,"tool_calls":1,"models":{"gemini-2.5-flash":{"total_tokens":530,"input_tokens":500,"output_tokens":30,"cached":0,"input":500}}}}
"#;

    fn fold(text: &str, cap: usize) -> Transcript {
        let mut t = Transcript::with_cap(cap);
        for line in text.lines() {
            t.push_line(line.as_bytes());
        }
        t
    }

    #[test]
    fn a_tool_run_folds_to_text_stats_and_requests() {
        let t = fold(TOOL_RUN, 0);
        assert!(t.succeeded());
        assert_eq!(
            t.session_id.as_deref(),
            Some("6fcc6d21-a9ab-4ce7-874c-f37c95b11e79")
        );
        assert_eq!(t.text, "Let me read it.\n\nThe README says Demo project.");
        assert_eq!(t.requests, 2);
        assert_eq!(t.tool_calls, 1);
        let stats = t.stats().unwrap();
        assert_eq!(
            (stats.input_tokens, stats.output_tokens, stats.total_tokens),
            (500, 30, 530)
        );
    }

    #[test]
    fn failures_garbage_and_writes_are_counted() {
        let run = r#"{"type":"init","session_id":"s","model":"auto"}
not json at all
{"type":"tool_use","tool_name":"write_file","tool_id":"w1","parameters":{"file_path":"out.txt","content":"x"}}
{"type":"tool_result","tool_id":"w1","status":"error","error":{"type":"tool_not_registered","message":"Tool \"write_file\" not found."}}
{"type":"error","severity":"warning","message":"Loop detected, stopping execution"}
{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: You have exhausted your daily quota on this model.]"},"stats":{"total_tokens":0}}
{"type":"brand_new_event","x":1}"#;
        let t = fold(run, 0);
        assert!(!t.succeeded());
        assert_eq!(t.garbage_lines, 1);
        assert!(t.files_written.is_empty(), "the write was refused");
        assert_eq!((t.tool_calls, t.tool_failures), (1, 1));
        assert_eq!(t.requests, 2, "the router's and one turn");
        assert_eq!(t.warnings, ["warning: Loop detected, stopping execution"]);
        let (_, error, _) = t.result.unwrap();
        assert!(error.unwrap().message.contains("daily quota"));
    }

    #[test]
    fn only_writes_that_succeeded_count() {
        let run = r#"{"type":"tool_use","tool_name":"write_file","tool_id":"a","parameters":{"file_path":"ok.txt"}}
{"type":"tool_use","tool_name":"replace","tool_id":"b","parameters":{"file_path":"locked.txt"}}
{"type":"tool_result","tool_id":"b","status":"error","error":{"type":"policy_violation","message":"Tool execution blocked: held"}}
{"type":"tool_result","tool_id":"a","status":"success"}"#;
        assert_eq!(fold(run, 0).files_written, ["ok.txt"]);
    }

    #[test]
    fn the_cap_keeps_the_end_of_the_text() {
        let mut t = Transcript::with_cap(10);
        for chunk in ["0123456789", "abcdé"] {
            t.push(StreamEvent::Message {
                role: Some("assistant".into()),
                content: chunk.into(),
            });
        }
        assert!(t.text.len() <= 10);
        assert!(t.text.ends_with("abcdé"));
        assert_eq!(t.text_dropped + t.text.len(), 16);
    }
}
