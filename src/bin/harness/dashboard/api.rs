//! What the dashboard shows, as JSON: one snapshot of every panel (also `harness status --json`)
//! and the activity feed after a given event id (what the live stream sends).
//!
//! Owns the reads behind the page; must not write. Recorded strings go out as JSON strings and
//! the page puts them in as text, never as markup.

use std::collections::BTreeMap;
use std::path::Path;

use agent_harness::config::Config;
use agent_harness::quota::Provider;
use agent_harness::route::prices::{self, Tokens};
use agent_harness::store::query::{self, DecisionKind, EventFilter, Liveness, SessionRow};
use agent_harness::store::{claims, reviews, routes, runs};
use rusqlite::{Connection, Result, Row};
use serde_json::{Value, json};

use crate::{fmt, problems, sessions};

/// How many events the snapshot's feed holds (the page keeps at most this many too).
pub const FEED: usize = 300;
/// How many events one live batch carries at most; a larger backlog goes out as several batches.
pub const BATCH: usize = 500;
/// A live session silent for this long shows as idle.
pub const IDLE_MS: i64 = 5 * 60_000;
/// Plans are looked for among this many of the latest events (there is no index on tool names).
const PLAN_LOOKBACK: i64 = 20_000;
/// How far back the cost tables reach.
const COST_DAYS: i64 = 31;

/// A session's health as the page shows it: live, idle, ended or gone.
pub fn health(s: &SessionRow, now: i64) -> &'static str {
    match s.liveness(now) {
        Liveness::Live if now - s.last_seen_ms > IDLE_MS => "idle",
        Liveness::Live => "live",
        Liveness::Stale => "idle",
        Liveness::Ended => "ended",
        Liveness::Gone => "gone",
    }
}

const FEED_COLUMNS: &str = "id, ts_ms, session_id, agent, event, tool_name, file_path, decision, \
     CASE WHEN truncated = 0 AND json_valid(payload) THEN substr(coalesce( \
       json_extract(payload, '$.prompt'), json_extract(payload, '$.tool_input.command'), \
       json_extract(payload, '$.tool_input.pattern'), json_extract(payload, '$.message'), \
       json_extract(payload, '$.error')), 1, 200) END";

fn feed_row(r: &Row<'_>) -> Result<Value> {
    let ts: i64 = r.get(1)?;
    let decision: Option<String> = r.get(7)?;
    Ok(json!({
        "id": r.get::<_, i64>(0)?,
        "ts_ms": ts,
        "time": fmt::rfc3339(ts),
        "session_id": r.get::<_, Option<String>>(2)?,
        "agent": r.get::<_, String>(3)?,
        "event": r.get::<_, String>(4)?,
        "tool_name": r.get::<_, Option<String>>(5)?,
        "file_path": r.get::<_, Option<String>>(6)?,
        "decision_kind": decision.as_deref().map(|d| DecisionKind::of(d).0.word()),
        "decision": decision,
        "summary": r.get::<_, Option<String>>(8)?,
    }))
}

/// Events with an id above `after`, oldest first, at most `limit`.
pub fn feed_after(conn: &Connection, after: i64, limit: usize) -> Result<Vec<Value>> {
    conn.prepare_cached(&format!(
        "SELECT {FEED_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?
    .query_map([after, limit as i64], feed_row)?
    .collect()
}

/// The newest `limit` events, oldest first.
pub fn feed_latest(conn: &Connection, limit: usize) -> Result<Vec<Value>> {
    let mut rows: Vec<Value> = conn
        .prepare_cached(&format!(
            "SELECT {FEED_COLUMNS} FROM events ORDER BY id DESC LIMIT ?1"
        ))?
        .query_map([limit as i64], feed_row)?
        .collect::<Result<_>>()?;
    rows.reverse();
    Ok(rows)
}

fn session_json(s: &SessionRow, now: i64) -> Value {
    let mut v = sessions::json(s, now);
    v["health"] = json!(health(s, now));
    v["last_seen_ms"] = json!(s.last_seen_ms);
    v
}

fn window_json(w: &agent_harness::quota::Window) -> Value {
    json!({
        "window": w.name, "label": w.label(), "used_pct": w.used_pct, "official": w.official,
        "resets_at_ms": w.resets_at_ms, "detail": w.detail,
        "projected_out_ms": w.projected_out_ms,
    })
}

/// Both providers' windows, exhaustions and burn rates.
fn rate_limits(conn: &Connection, config: &Config, now: i64) -> Result<Value> {
    let quota = agent_harness::quota::load(conn, &config.quota, now)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    // Claude: input + output tokens per minute over the last hour of transcript usage.
    let hour_tokens: i64 = conn.query_row(
        "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM usage \
         INDEXED BY usage_by_time WHERE ts_ms >= ?1",
        [now - 3_600_000],
        |r| r.get(0),
    )?;
    let day_start = agent_harness::time::last_pacific_midnight(now);
    let (requests, gemini_tokens): (i64, i64) = conn.query_row(
        "SELECT coalesce(sum(requests), 0), coalesce(sum(total_tokens), 0) FROM runs \
         WHERE created_ms >= ?1",
        [day_start],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let hours = ((now - day_start) as f64 / 3_600_000.0).max(1.0 / 60.0);
    let exhaustions: Vec<Value> = conn
        .prepare("SELECT provider, since_ms, until_ms, until_from, reason FROM exhaustion")?
        .query_map([], |r| {
            Ok(json!({
                "provider": r.get::<_, String>(0)?, "since_ms": r.get::<_, i64>(1)?,
                "until_ms": r.get::<_, i64>(2)?, "until_from": r.get::<_, String>(3)?,
                "reason": r.get::<_, String>(4)?,
            }))
        })?
        .collect::<Result<_>>()?;
    let provider = |p: Provider, burn: Value| {
        let pq = quota.of(p);
        json!({
            "name": p.name(),
            "windows": pq.windows.iter().map(window_json).collect::<Vec<_>>(),
            "exhausted": pq.exhausted.as_ref().map(|e| json!({
                "since_ms": e.since_ms, "until_ms": e.until_ms, "until_from": e.until_from,
                "reason": e.reason,
            })),
            "burn": burn,
        })
    };
    Ok(json!({
        "claude": provider(Provider::Claude, json!({
            "tokens_per_minute": hour_tokens as f64 / 60.0, "over": "the last hour",
        })),
        "gemini": provider(Provider::Gemini, json!({
            "requests_today": requests, "tokens_today": gemini_tokens,
            "requests_per_hour": requests as f64 / hours,
        })),
        "exhaustions": exhaustions,
    }))
}

/// One cost line: tokens of the four kinds and what they cost.
#[derive(Default, Clone, Copy)]
struct Line {
    tokens: Tokens,
    cost: f64,
    responses: i64,
}

impl Line {
    fn add(&mut self, t: Tokens, cost: f64, n: i64) {
        self.tokens.input += t.input;
        self.tokens.output += t.output;
        self.tokens.cache_write += t.cache_write;
        self.tokens.cache_read += t.cache_read;
        self.cost += cost;
        self.responses += n;
    }

    fn json(&self, key: &str, name: &str) -> Value {
        let t = self.tokens;
        json!({
            key: name, "input": t.input, "output": t.output, "cache_write": t.cache_write,
            "cache_read": t.cache_read,
            "total": t.input + t.output + t.cache_write + t.cache_read,
            "cost_usd": (self.cost * 10_000.0).round() / 10_000.0, "responses": self.responses,
        })
    }
}

fn table(lines: &BTreeMap<String, Line>, key: &str, newest_first: bool) -> Vec<Value> {
    let mut out: Vec<Value> = lines.iter().map(|(k, l)| l.json(key, k)).collect();
    if newest_first {
        out.reverse();
    }
    out
}

/// How long the server reuses the cost tables: grouping a month of usage by day, session and
/// model is most of a snapshot's cost (about 150 ms for 100,000 responses), and costs need
/// not follow each second.
const COSTS_TTL_MS: i64 = 30_000;

/// The cost tables of the last [`COSTS_TTL_MS`], if any (one per process: one store).
static COSTS: std::sync::Mutex<Option<(i64, Value)>> = std::sync::Mutex::new(None);

/// [`costs`], reused for [`COSTS_TTL_MS`].
fn cached_costs(conn: &Connection, now: i64) -> Result<Value> {
    if let Ok(cache) = COSTS.lock()
        && let Some((at, v)) = cache.as_ref()
        && now - at < COSTS_TTL_MS
        && now >= *at
    {
        return Ok(v.clone());
    }
    let v = costs(conn, now)?;
    if let Ok(mut cache) = COSTS.lock() {
        *cache = Some((now, v.clone()));
    }
    Ok(v)
}

/// Costs from the transcript usage the hooks stored, priced with the dated table, and the
/// Gemini runs' tokens beside them.
fn costs(conn: &Connection, now: i64) -> Result<Value> {
    let since = now - COST_DAYS * 86_400_000;
    let mut by_day = BTreeMap::<String, Line>::new();
    let mut by_session = BTreeMap::<String, Line>::new();
    let mut by_model = BTreeMap::<String, Line>::new();
    let mut by_provider = BTreeMap::<String, Line>::new();
    let mut st = conn.prepare(
        "SELECT date(ts_ms / 1000, 'unixepoch', 'localtime'), coalesce(session_id, ''), \
         coalesce(model, ''), sum(input_tokens), sum(output_tokens), \
         sum(cache_creation_tokens), sum(cache_read_tokens), count(*) \
         FROM usage WHERE ts_ms >= ?1 GROUP BY 1, 2, 3",
    )?;
    let mut rows = st.query([since])?;
    while let Some(r) = rows.next()? {
        let day: String = r.get(0)?;
        let session: String = r.get(1)?;
        let model: String = r.get(2)?;
        let t = Tokens {
            input: r.get::<_, i64>(3)? as u64,
            output: r.get::<_, i64>(4)? as u64,
            cache_write: r.get::<_, i64>(5)? as u64,
            cache_read: r.get::<_, i64>(6)? as u64,
        };
        let n: i64 = r.get(7)?;
        let cost = prices::claude_cost(
            Some(&model).filter(|m| !m.is_empty()).map(|m| m.as_str()),
            t,
        );
        by_day.entry(day).or_default().add(t, cost, n);
        by_session.entry(session).or_default().add(t, cost, n);
        by_model.entry(model).or_default().add(t, cost, n);
        by_provider
            .entry("claude".into())
            .or_default()
            .add(t, cost, n);
    }
    let mut gemini_runs = Vec::new();
    for run in runs::since(conn, since)? {
        let t = Tokens {
            input: run.input_tokens.unwrap_or(0).max(0) as u64,
            output: run.output_tokens.unwrap_or(0).max(0) as u64,
            cache_write: 0,
            cache_read: run.cached_tokens.unwrap_or(0).max(0) as u64,
        };
        let cost = prices::gemini_cost(t);
        let model = run
            .model
            .clone()
            .unwrap_or_else(|| prices::GEMINI_DEFAULT.into());
        by_provider
            .entry("gemini".into())
            .or_default()
            .add(t, cost, 1);
        by_model.entry(model.clone()).or_default().add(t, cost, 1);
        if let Some(requester) = &run.requester {
            by_session
                .entry(requester.clone())
                .or_default()
                .add(t, cost, 0);
        }
        let day = chrono::DateTime::from_timestamp_millis(run.created_ms)
            .map(|d| {
                d.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default();
        by_day.entry(day).or_default().add(t, cost, 0);
        gemini_runs.push(json!({
            "run_id": run.run_id, "requester": run.requester, "status": run.status,
            "created_ms": run.created_ms, "model": model, "requests": run.requests,
            "input": t.input, "output": t.output, "cached": t.cache_read,
            "total": run.total_tokens, "cost_usd": (cost * 10_000.0).round() / 10_000.0,
        }));
    }
    gemini_runs.reverse();
    gemini_runs.truncate(20);
    let mut sessions = table(&by_session, "session_id", false);
    sessions.sort_by(|a, b| {
        b["cost_usd"]
            .as_f64()
            .partial_cmp(&a["cost_usd"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    sessions.truncate(30);
    Ok(json!({
        "prices_date": prices::PRICES_DATE,
        "days": COST_DAYS,
        "by_day": table(&by_day, "day", true),
        "by_session": sessions,
        "by_model": table(&by_model, "model", false),
        "by_provider": table(&by_provider, "provider", false),
        "gemini_runs": gemini_runs,
    }))
}

fn review_json(conn: &Connection, r: &reviews::Review, config: &Config) -> Value {
    json!({
        "id": r.id, "session_id": r.session_id, "status": r.status, "trigger": r.trigger,
        "created_ms": r.created_ms, "finished_ms": r.finished_ms,
        "round": reviews::thread_blocks(conn, r.thread).unwrap_or(0),
        "max_rounds": config.review.max_rounds,
        "summary": r.summary, "error": r.error, "files": r.files,
        "findings": serde_json::to_value(&r.findings).unwrap_or(Value::Null),
        "waive_reason": r.waive_reason,
        "open": matches!(r.status.as_str(), "reject" | "wanted" | "running" | "requested"),
    })
}

/// Plans accepted through ExitPlanMode, newest first (one per tool call).
fn plans(conn: &Connection) -> Result<Vec<Value>> {
    conn.prepare(
        "SELECT max(id), max(ts_ms), session_id, json_extract(payload, '$.tool_input.plan') \
         FROM events WHERE id > (SELECT coalesce(max(id), 0) FROM events) - ?1 \
         AND tool_name = 'ExitPlanMode' AND json_valid(payload) \
         AND json_extract(payload, '$.tool_input.plan') IS NOT NULL \
         GROUP BY coalesce(tool_use_id, id) ORDER BY 1 DESC LIMIT 10",
    )?
    .query_map([PLAN_LOOKBACK], |r| {
        Ok(json!({
            "event_id": r.get::<_, i64>(0)?, "ts_ms": r.get::<_, i64>(1)?,
            "session_id": r.get::<_, Option<String>>(2)?, "plan": r.get::<_, String>(3)?,
        }))
    })?
    .collect()
}

fn locks(conn: &Connection, now: i64) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for c in claims::list(conn)? {
        let gone = claims::holder_gone(conn, &c.session_id)?;
        out.push(json!({
            "path": c.path, "session_id": c.session_id, "agent": c.agent, "tool_name": c.tool_name,
            "claimed_ms": c.claimed_ms, "touched_ms": c.touched_ms, "expires_ms": c.expires_ms,
            "age_ms": now - c.claimed_ms, "left_ms": (c.expires_ms - now).max(0),
            "live": c.expires_ms > now && gone.is_none(),
            "holder": match gone {
                None => "live",
                Some(claims::Gone::Ended) => "ended",
                Some(claims::Gone::ProcessExited) => "gone",
            },
        }));
    }
    Ok(out)
}

/// Every panel at once. Its first keys are those `harness status --json` always had (`recent`:
/// how many events `recent_events` holds).
pub fn snapshot(
    conn: &Connection,
    config: &Config,
    db: &Path,
    now: i64,
    recent: usize,
) -> Result<Value> {
    let sessions = query::sessions(conn, 50)?;
    let live: Vec<Value> = query::open_sessions(conn)?
        .iter()
        .filter(|s| s.liveness(now) == Liveness::Live)
        .map(|s| sessions::json(s, now))
        .collect();
    let recent = query::events(conn, &EventFilter::default(), recent)?;
    let decisions = query::recent_decisions(conn, DecisionKind::Any, 5)?;
    let totals = query::totals(conn, now)?;
    let quota = agent_harness::quota::load(conn, &config.quota, now)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let claims = locks(conn, now)?;
    let open_reviews = reviews::open_reviews(conn)?;
    let log = agent_harness::log::path_for(db);
    let problems = problems::read(&log, now, 20);
    let event_json = |r: &query::EventRow| {
        json!({
            "id": r.id, "time": fmt::rfc3339(r.ts_ms), "session_id": r.session_id,
            "agent": r.agent, "event": r.event, "tool_name": r.tool_name,
            "file_path": r.file_path, "decision": r.decision,
        })
    };
    let feed = feed_latest(conn, FEED)?;
    // The feed's own last id (0 for an empty store), not a second read: an event recorded
    // between the two would be in neither the feed nor the stream that resumes after it.
    let last_id = feed.last().and_then(|e| e["id"].as_i64()).unwrap_or(0);
    Ok(json!({
        "store": db,
        "events": totals.events,
        "events_last_hour": totals.events_last_hour,
        "sessions": totals.sessions,
        "live_sessions": live,
        "recent_events": recent.iter().map(event_json).collect::<Vec<_>>(),
        "recent_decisions": decisions.iter().map(event_json).collect::<Vec<_>>(),
        "recent_problems": problems.recent.iter().map(|p| json!({
            "time": p.ts_ms.map(fmt::rfc3339), "ts_ms": p.ts_ms, "text": p.text,
        })).collect::<Vec<_>>(),
        "older_problems": problems.older,
        "quota": crate::quota::json(&quota),
        "live_claims": claims.iter().filter(|c| c["left_ms"].as_i64() > Some(0)).count(),
        "open_reviews": open_reviews.iter().map(|r| review_json(conn, r, config))
            .collect::<Vec<_>>(),
        // The dashboard's panels.
        "now_ms": now,
        "last_event_id": last_id,
        "activity": feed,
        "session_list": sessions.iter().map(|s| session_json(s, now)).collect::<Vec<_>>(),
        "routes": routes::recent(conn, 30)?.into_iter().rev().collect::<Vec<_>>(),
        "rate_limits": rate_limits(conn, config, now)?,
        "costs": cached_costs(conn, now)?,
        "reviews": reviews::recent(conn, None, 20)?.iter().map(|r| review_json(conn, r, config))
            .collect::<Vec<_>>(),
        "plans": plans(conn)?,
        "locks": claims,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(last_seen_ms: i64, ended_ms: Option<i64>) -> SessionRow {
        SessionRow {
            session_id: "s".into(),
            agent: "claude".into(),
            first_seen_ms: 0,
            last_seen_ms,
            cwd: None,
            project_root: None,
            transcript_path: None,
            model: None,
            source: None,
            client: None,
            ended_ms,
            end_reason: None,
            event_count: 1,
        }
    }

    #[test]
    fn health_is_live_idle_ended_or_gone() {
        let now = 10 * 3_600_000;
        assert_eq!(health(&session(now - 1_000, None), now), "live");
        assert_eq!(health(&session(now - IDLE_MS - 1, None), now), "idle");
        // Silent past the unknown-process bound: still idle, not gone (nothing says it died).
        assert_eq!(health(&session(0, None), now), "idle");
        assert_eq!(health(&session(now, Some(now)), now), "ended");
        let mut dead = session(now, None);
        // A process id that cannot be running.
        dead.client = Some(agent_harness::process::ClientProcess {
            pid: u32::MAX - 1,
            start_ticks: 1,
        });
        assert_eq!(health(&dead, now), "gone");
    }
}
