//! `harness status`: one screen of what the agents are doing: live sessions, quota, the decisions
//! the harness made lately, recent activity, and recent problems from the log.

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, DecisionKind, EventFilter, Liveness};

use crate::{CliResult, Exit, events, fmt, open_store, problems, say, sessions};

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object instead of the panel.
    #[arg(long)]
    json: bool,
    /// How many recent events to show.
    #[arg(short = 'n', long, default_value_t = 10)]
    recent: usize,
}

/// How many of the latest decisions the panel shows.
const DECISIONS: usize = 5;
/// How many of the latest problems the panel shows.
const PROBLEMS: usize = 3;

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
    let decisions = query::recent_decisions(conn, DecisionKind::Any, DECISIONS)?;
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
    let problems = problems::read(&log, now, PROBLEMS);
    let mut out = fmt::out();

    if args.json {
        // The dashboard's snapshot: the keys this command always had, then every panel's data.
        let v = crate::dashboard::snapshot(conn, &config, &db, now, args.recent)?;
        out.json(&v)?;
        return Ok(Exit::Ok);
    }

    say!(
        out,
        "agent-harness · {} · {} events ({} in the last hour) · {} sessions",
        fmt::path(&db.to_string_lossy()),
        totals.events,
        totals.events_last_hour,
        totals.sessions
    )?;
    say!(out)?;
    say!(out, "Live sessions ({})", live.len())?;
    if live.is_empty() {
        say!(out, "  none")?;
    }
    for s in &live {
        say!(out, "  {}", sessions::line(s, now).trim_end())?;
    }
    say!(out)?;
    say!(out, "Quota")?;
    for line in crate::quota::lines(&quota, &config, now) {
        say!(out, "  {line}")?;
    }
    say!(out, "  {claims} file(s) claimed by agents (harness locks)")?;
    if !open_reviews.is_empty() {
        say!(out)?;
        say!(out, "Open reviews ({})", open_reviews.len())?;
        for r in &open_reviews {
            say!(out, "  {}", review_line(r))?;
        }
    }
    say!(out)?;
    say!(out, "Recent decisions (harness events --decision any)")?;
    if decisions.is_empty() {
        say!(
            out,
            "  none: no denial, block, wait or added context lately"
        )?;
    }
    for r in &decisions {
        say!(out, "  {}", events::line(r).trim_end())?;
    }
    say!(out)?;
    say!(out, "Recent activity")?;
    if recent.is_empty() {
        say!(
            out,
            "  nothing recorded yet: run `harness install` (every project; `--project DIR` for one) and use claude"
        )?;
    }
    for r in &recent {
        say!(out, "  {}", events::line(r).trim_end())?;
    }
    if !problems.recent.is_empty() {
        say!(out)?;
        say!(
            out,
            "Problems in the last day ({})",
            fmt::path(&log.to_string_lossy())
        )?;
        for p in &problems.recent {
            say!(out, "  {}", p.shown(now))?;
        }
    }
    Ok(Exit::Ok)
}
