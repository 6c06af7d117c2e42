//! `harness sessions`: one line per agent session, newest activity first.

use std::io::Write;

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, Liveness, SessionRow};

use crate::{CliResult, Exit, fmt, open_store};

#[derive(clap::Args)]
pub struct Args {
    /// How many sessions to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Only sessions whose agent is still at work.
    #[arg(long)]
    live: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let mut rows = if args.live {
        query::open_sessions(conn)?
    } else {
        query::sessions(conn, args.limit)?
    };
    if args.live {
        rows.retain(|s| s.liveness(now) == Liveness::Live);
        rows.truncate(args.limit);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for s in &rows {
            writeln!(out, "{}", json(s, now))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        writeln!(out, "No sessions recorded yet.")?;
        return Ok(Exit::Ok);
    }
    writeln!(
        out,
        "{:<8}  {:<6}  {:<5}  {:<14}  {:<10}  {:>6}  PROJECT",
        "SESSION", "AGENT", "STATE", "STARTED", "LAST SEEN", "EVENTS"
    )?;
    for s in &rows {
        writeln!(out, "{}", line(s, now))?;
    }
    Ok(Exit::Ok)
}

pub fn line(s: &SessionRow, now: i64) -> String {
    let place = s
        .project_root
        .as_deref()
        .or(s.cwd.as_deref())
        .map(fmt::path);
    let model = s
        .model
        .as_deref()
        .map(|m| format!("  ({m})"))
        .unwrap_or_default();
    format!(
        "{:<8}  {:<6}  {:<5}  {:<14}  {:<10}  {:>6}  {}{}",
        fmt::short(&s.session_id),
        s.agent,
        s.liveness(now).as_str(),
        fmt::clock(s.first_seen_ms),
        fmt::ago(now, s.last_seen_ms),
        s.event_count,
        place.unwrap_or_default(),
        model
    )
}

pub fn json(s: &SessionRow, now: i64) -> serde_json::Value {
    serde_json::json!({
        "session_id": s.session_id,
        "agent": s.agent,
        "state": s.liveness(now).as_str(),
        "first_seen": fmt::rfc3339(s.first_seen_ms),
        "last_seen": fmt::rfc3339(s.last_seen_ms),
        "cwd": s.cwd,
        "project_root": s.project_root,
        "transcript_path": s.transcript_path,
        "model": s.model,
        "source": s.source,
        "client_pid": s.client.map(|c| c.pid),
        "ended": s.ended_ms.map(fmt::rfc3339),
        "end_reason": s.end_reason,
        "events": s.event_count,
    })
}
