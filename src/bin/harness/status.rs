//! `harness status`: one screen of what the agents are doing: live sessions, recent activity,
//! and recent problems from the log.

use std::io::Write;

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, EventFilter, Liveness};

use crate::{CliResult, Exit, fmt, open_store, sessions};

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object instead of the panel.
    #[arg(long)]
    json: bool,
    /// How many recent events to show.
    #[arg(short = 'n', long, default_value_t = 10)]
    recent: usize,
}

pub fn run(args: Args) -> CliResult {
    let mut store = open_store()?;
    let db = store.path().to_path_buf();
    let conn = store.reader()?;
    let now = now_ms();
    let live: Vec<_> = query::open_sessions(conn)?
        .into_iter()
        .filter(|s| s.liveness(now) == Liveness::Live)
        .collect();
    let recent = query::events(conn, &EventFilter::default(), args.recent)?;
    let totals = query::totals(conn, now)?;
    let config = crate::config()?;
    let quota = agent_harness::quota::load(conn, &config.quota, now)?;
    let claims = agent_harness::store::claims::list(conn)?
        .into_iter()
        .filter(|c| c.expires_ms > now)
        .count();
    let open_reviews = agent_harness::store::reviews::open_reviews(conn)?;
    let review_line = |r: &agent_harness::store::reviews::Review| {
        let thread = agent_harness::store::reviews::thread_blocks(conn, r.thread).unwrap_or(0);
        format!(
            "review {} · session {} · {} · round {} of {} · `harness reviews show {}`",
            r.id,
            fmt::short(&r.session_id),
            crate::review::status_word(r),
            thread,
            config.review.max_rounds,
            r.id
        )
    };
    let log = agent_harness::log::path_for(&db);
    let problems = agent_harness::log::tail(&log, 3);
    let mut out = std::io::stdout().lock();

    if args.json {
        let v = serde_json::json!({
            "store": db,
            "events": totals.events,
            "events_last_hour": totals.events_last_hour,
            "sessions": totals.sessions,
            "live_sessions": live.iter().map(|s| sessions::json(s, now)).collect::<Vec<_>>(),
            "recent_events": recent.iter().map(|r| serde_json::json!({
                "id": r.id, "time": fmt::rfc3339(r.ts_ms), "session_id": r.session_id,
                "agent": r.agent, "event": r.event, "tool_name": r.tool_name,
                "file_path": r.file_path,
            })).collect::<Vec<_>>(),
            "recent_problems": problems,
            "quota": crate::quota::json(&quota),
            "live_claims": claims,
            "open_reviews": open_reviews.iter().map(|r| serde_json::json!({
                "id": r.id, "session_id": r.session_id, "status": r.status,
                "round": agent_harness::store::reviews::thread_blocks(conn, r.thread).unwrap_or(0),
                "max_rounds": config.review.max_rounds,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
        return Ok(Exit::Ok);
    }

    writeln!(
        out,
        "agent-harness · {} · {} events ({} in the last hour) · {} sessions",
        fmt::path(&db.to_string_lossy()),
        totals.events,
        totals.events_last_hour,
        totals.sessions
    )?;
    writeln!(out)?;
    writeln!(out, "Live sessions ({})", live.len())?;
    if live.is_empty() {
        writeln!(out, "  none")?;
    }
    for s in &live {
        writeln!(out, "  {}", sessions::line(s, now))?;
    }
    writeln!(out)?;
    writeln!(out, "Quota")?;
    for line in crate::quota::lines(&quota, &config, now) {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "  {claims} file(s) claimed by agents (harness locks)")?;
    if !open_reviews.is_empty() {
        writeln!(out)?;
        writeln!(out, "Open reviews ({})", open_reviews.len())?;
        for r in &open_reviews {
            writeln!(out, "  {}", review_line(r))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "Recent activity")?;
    if recent.is_empty() {
        writeln!(
            out,
            "  nothing recorded yet: run `harness install` in a project and use claude there"
        )?;
    }
    for r in &recent {
        writeln!(out, "  {}", crate::events::line(r))?;
    }
    if !problems.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Recent problems ({})",
            fmt::path(&log.to_string_lossy())
        )?;
        for p in &problems {
            writeln!(out, "  {p}")?;
        }
    }
    Ok(Exit::Ok)
}
