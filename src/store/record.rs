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
