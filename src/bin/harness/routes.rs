//! `harness routes`: the delegation advice the UserPromptSubmit hook gave (or did not), one
//! decision explained, and per task type how often advice was given, followed, and how it went.

use std::io::Write;

use agent_harness::error::Error;
use agent_harness::hook::now_ms;
use agent_harness::route::prices::PRICES_DATE;
use agent_harness::store::routes::{self, Route};

use crate::fmt::{Col, Table, col, num};
use crate::{CliResult, Exit, fmt, open_store};

/// The list's columns, headed like `events`, `locks`, `runs` and `reviews`.
const LIST_COLUMNS: [Col; 8] = [
    num("ID", 6),
    col("TIME", 11),
    col("SESSION", 8),
    col("TYPE", 10),
    col("AGENT", 6),
    num("SCORE", 5),
    col("OUTCOME", 24),
    col("TASK", 60),
];

#[derive(clap::Args)]
pub struct Args {
    /// Explain one decision (its id, from the list).
    id: Option<i64>,
    /// JSON: one object per decision (or the stats as one array).
    #[arg(long)]
    json: bool,
    /// Per task type: advised, followed, how the runs went, cost on Claude against Gemini.
    #[arg(long)]
    stats: bool,
    /// How many decisions to list.
    #[arg(long, default_value_t = 30)]
    limit: usize,
}

/// Recorded text for a terminal: control characters (terminal escapes) become `?`.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn outcome(r: &Route) -> String {
    match (r.outcome.as_deref(), r.run_status.as_deref()) {
        (None, _) => "open".into(),
        (Some("delegated"), Some(status)) => format!("delegated ({status})"),
        (Some(o), _) => o.into(),
    }
}

fn json(r: &Route) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["decided"] = fmt::rfc3339(r.decided_ms).into();
    v
}

/// Decisions settled per write transaction.
const SETTLE_BATCH: usize = 50;

pub fn run(args: Args) -> CliResult {
    let mut store = open_store()?;
    let db = store.path().to_path_buf();
    let now = now_ms();
    // Settle what can be settled (the hooks leave it to the readers), so the outcomes shown are
    // current: in short transactions, beside hooks that may be writing.
    while store.write(|tx| {
        routes::settle_all(tx, now, SETTLE_BATCH).map_err(|e| Error::db("settle routes in", &db, e))
    })? >= SETTLE_BATCH
    {}
    let conn = store.reader()?;
    let mut out = std::io::stdout().lock();
    if args.stats {
        let stats = routes::stats(conn)?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&stats)?)?;
            return Ok(Exit::Ok);
        }
        if stats.is_empty() {
            writeln!(out, "no routing decisions yet")?;
            return Ok(Exit::Ok);
        }
        writeln!(
            out,
            "{:<10} {:>9} {:>7} {:>8} {:>3} {:>6}  advised turns kept on Claude",
            "type", "decisions", "advised", "followed", "ok", "failed"
        )?;
        for s in &stats {
            let cost = if s.kept_cost_usd > 0.0 {
                format!(
                    "cost ${:.2} on Claude; about ${:.2} on Gemini",
                    s.kept_cost_usd, s.kept_gemini_usd
                )
            } else {
                "-".into()
            };
            writeln!(
                out,
                "{:<10} {:>9} {:>7} {:>8} {:>3} {:>6}  {cost}",
                s.task_type, s.decisions, s.advised, s.followed, s.succeeded, s.failed
            )?;
        }
        writeln!(
            out,
            "prices: list prices of {PRICES_DATE} (src/route/prices.rs)"
        )?;
        return Ok(Exit::Ok);
    }
    if let Some(id) = args.id {
        let Some(r) = routes::get(conn, id)? else {
            return Err(format!("no routing decision {id} (see `harness routes`)").into());
        };
        if args.json {
            writeln!(out, "{}", json(&r))?;
            return Ok(Exit::Ok);
        }
        writeln!(
            out,
            "decision {} at {} in session {}",
            r.id,
            fmt::clock(r.decided_ms),
            fmt::short(&r.session_id)
        )?;
        writeln!(out, "task:     {}", plain(&r.task))?;
        writeln!(out, "type:     {} ({})", r.task_type, r.complexity)?;
        writeln!(
            out,
            "selected: {} (score {:.2}, bar {:.2})",
            r.selected, r.score, r.bar
        )?;
        writeln!(out, "reason:   {}", plain(&r.reason))?;
        for side in ["claude", "gemini"] {
            let f = &r.factors[side];
            writeln!(
                out,
                "{side:<8}  est. tokens {}, headroom {}, type match {:.2}, cost ${:.3}{}",
                f["est_tokens"],
                f["headroom_pct"]
                    .as_f64()
                    .map_or("unknown".into(), |h| format!("{h:.0}%")),
                f["type_match"].as_f64().unwrap_or(0.0),
                f["cost_usd"].as_f64().unwrap_or(0.0),
                f["past_success"]
                    .as_f64()
                    .map_or(String::new(), |s| format!(
                        ", past success {:.0}%",
                        s * 100.0
                    )),
            )?;
        }
        writeln!(out, "outcome:  {}", outcome(&r))?;
        if let (Some(c), Some(g)) = (r.turn_cost_usd, r.gemini_cost_usd) {
            writeln!(
                out,
                "turn:     {} tokens; cost ${c:.2} on Claude, about ${g:.2} on Gemini",
                r.turn_tokens.unwrap_or(0)
            )?;
        }
        return Ok(Exit::Ok);
    }
    let rows = routes::recent(conn, args.limit)?;
    if args.json {
        for r in &rows {
            writeln!(out, "{}", json(r))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        writeln!(out, "no routing decisions yet")?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&LIST_COLUMNS);
    for r in &rows {
        table.row(vec![
            r.id.to_string(),
            fmt::clock(r.decided_ms),
            fmt::short(&r.session_id).to_string(),
            r.task_type.clone(),
            r.selected.clone(),
            format!("{:.2}", r.score),
            outcome(r),
            plain(&agent_harness::text::clip(&r.task, 60)),
        ]);
    }
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(Exit::Ok)
}
