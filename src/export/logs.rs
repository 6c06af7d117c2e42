//! The log records: each line of the harness log (the problems hooks swallowed), and optionally
//! each hook event (its name, session and tool; never its payload). The log's cursor is its
//! inode and byte offset; a rotated log starts again at the new file's beginning.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::otlp::{LogRecord, s};
use super::{Privacy, ids};
use crate::store::export::ExportEvent;

/// Where the log was read up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub ino: u64,
    pub offset: u64,
}

/// The log's complete lines after `cursor` (at most `max_bytes` of them), and the cursor after
/// them. A missing log is no lines.
pub fn read_lines(
    log: &Path,
    cursor: &LogCursor,
    max_bytes: usize,
) -> std::io::Result<(Vec<String>, LogCursor)> {
    let mut f = match crate::private_file::open(log, crate::private_file::Mode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), cursor.clone()));
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    let mut offset = if meta.ino() == cursor.ino {
        cursor.offset
    } else {
        0
    };
    if offset > meta.len() {
        offset = 0;
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(max_bytes as u64).read_to_end(&mut buf)?;
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = String::from_utf8_lossy(&buf[..end])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    Ok((
        lines,
        LogCursor {
            ino: meta.ino(),
            offset: offset + end as u64,
        },
    ))
}

/// A log line `<time> <source>[pid]: <message>` as a record. Its text names paths and sessions:
/// with ids or paths hashed, only its source is sent.
pub fn problem(line: &str, p: &Privacy, now_ms: i64) -> LogRecord {
    let (time, rest) = line.split_once(' ').unwrap_or(("", line));
    let time_ms = chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp_millis())
        .unwrap_or(now_ms);
    let source = rest.split('[').next().unwrap_or("").trim();
    LogRecord {
        time_ms,
        observed_ms: now_ms,
        severity: 13,
        severity_text: "WARN",
        body: p
            .text(rest)
            .unwrap_or_else(|| format!("{source}: (text withheld: ids or paths are hashed)")),
        attrs: vec![s("harness.log.source", source)],
        trace_id: None,
    }
}

/// A hook event as a record (no payload).
pub fn event(ev: &ExportEvent, p: &Privacy, now_ms: i64) -> LogRecord {
    let mut attrs = vec![
        s("harness.event", ev.event.clone()),
        s("harness.agent", ev.agent.clone()),
    ];
    if let Some(sid) = &ev.session_id {
        attrs.push(s("gen_ai.conversation.id", p.id(sid)));
    }
    if let Some(t) = &ev.tool_name {
        attrs.push(s("gen_ai.tool.name", t.clone()));
    }
    if let Some(d) = ev.decision.as_deref().and_then(|d| p.text(d)) {
        attrs.push(s("harness.decision", crate::text::clip(&d, 300)));
    }
    LogRecord {
        time_ms: ev.ts_ms,
        observed_ms: now_ms,
        severity: 9,
        severity_text: "INFO",
        body: ev.event.clone(),
        attrs,
        trace_id: ev.session_id.as_deref().map(ids::session_trace),
    }
}
