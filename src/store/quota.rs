//! Quota rows: figures, exhaustion, warnings given, usage read from transcripts, reader cursors.
//! The SQL only; what the numbers mean is `crate::quota`'s.

use rusqlite::{Connection, OptionalExtension, Result, params};

/// One stored figure: how full a provider's window is.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub provider: String,
    pub window: String,
    pub source: String,
    pub used_pct: Option<f64>,
    pub resets_at_ms: Option<i64>,
    pub official: bool,
    pub observed_ms: i64,
    pub session_id: Option<String>,
    pub detail: Option<String>,
    pub projected_ms: Option<i64>,
}

/// Writes a figure (replacing the previous one of the same provider, window and source).
pub fn put_figure(conn: &Connection, f: &Figure) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO quota_figures (provider, window, source, used_pct, resets_at_ms, \
         official, observed_ms, session_id, detail, projected_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        f.provider,
        f.window,
        f.source,
        f.used_pct,
        f.resets_at_ms,
        f.official,
        f.observed_ms,
        f.session_id,
        f.detail,
        f.projected_ms
    ])?;
    Ok(())
}

/// Removes the figures of one source (for example, estimates that no longer apply).
pub fn clear_figures(conn: &Connection, provider: &str, source: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM quota_figures WHERE provider = ?1 AND source = ?2")?
        .execute(params![provider, source])?;
    Ok(())
}

/// Every stored figure (`figures`).
pub const FIGURES_SQL: &str = "SELECT provider, window, source, used_pct, resets_at_ms, official, \
     observed_ms, session_id, detail, projected_ms FROM quota_figures";

pub fn figures(conn: &Connection) -> Result<Vec<Figure>> {
    conn.prepare_cached(FIGURES_SQL)?
        .query_map([], |r| {
            Ok(Figure {
                provider: r.get(0)?,
                window: r.get(1)?,
                source: r.get(2)?,
                used_pct: r.get(3)?,
                resets_at_ms: r.get(4)?,
                official: r.get(5)?,
                observed_ms: r.get(6)?,
                session_id: r.get(7)?,
                detail: r.get(8)?,
                projected_ms: r.get(9)?,
            })
        })?
        .collect()
}

/// A provider known to be exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhaustion {
    pub provider: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub until_from: String,
    pub reason: String,
}

pub fn put_exhaustion(conn: &Connection, e: &Exhaustion) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO exhaustion (provider, since_ms, until_ms, until_from, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        e.provider,
        e.since_ms,
        e.until_ms,
        e.until_from,
        e.reason
    ])?;
    Ok(())
}

/// A provider's exhaustion (`exhaustion`).
pub const EXHAUSTION_SQL: &str =
    "SELECT provider, since_ms, until_ms, until_from, reason FROM exhaustion WHERE provider = ?1";

pub fn exhaustion(conn: &Connection, provider: &str) -> Result<Option<Exhaustion>> {
    conn.prepare_cached(EXHAUSTION_SQL)?
        .query_row([provider], |r| {
            Ok(Exhaustion {
                provider: r.get(0)?,
                since_ms: r.get(1)?,
                until_ms: r.get(2)?,
                until_from: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .optional()
}

/// Clears a provider's exhaustion recorded before `before_ms` (fresh evidence it works again).
pub fn clear_exhaustion(conn: &Connection, provider: &str, before_ms: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM exhaustion WHERE provider = ?1 AND since_ms < ?2")?
        .execute(params![provider, before_ms])?
        > 0)
}

/// A warning already given: provider, window, level, reset time of the window it was about.
pub type AlertKey = (String, String, String, i64);

/// The alerts fired (`alerts`).
pub const ALERTS_SQL: &str =
    "SELECT provider, window, level, resets_at_ms, fired_ms FROM quota_alerts";

pub fn alerts(conn: &Connection) -> Result<Vec<(AlertKey, i64)>> {
    conn.prepare_cached(ALERTS_SQL)?
        .query_map([], |r| {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get(4)?))
        })?
        .collect()
}

pub fn put_alert(conn: &Connection, key: &AlertKey, fired_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO quota_alerts (provider, window, level, resets_at_ms, fired_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![key.0, key.1, key.2, key.3, fired_ms])?;
    Ok(())
}

/// Re-arms a window's warnings (fresh data showed it recovered).
pub fn rearm(conn: &Connection, provider: &str, window: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM quota_alerts WHERE provider = ?1 AND window = ?2")?
        .execute(params![provider, window])?;
    Ok(())
}

/// One API response's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub message_id: String,
    pub request_id: String,
    pub ts_ms: i64,
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
    pub sidechain: bool,
}

impl UsageRow {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens
    }
}

/// Stores usage rows; a response already stored keeps the larger of the two (one response is
/// written as several transcript lines, read perhaps in different passes).
pub fn put_usage(conn: &Connection, rows: &[UsageRow]) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO usage (message_id, request_id, ts_ms, session_id, model, input_tokens, \
         output_tokens, cache_creation_tokens, cache_read_tokens, sidechain) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (message_id, request_id) DO UPDATE SET \
           input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
           cache_creation_tokens = excluded.cache_creation_tokens, \
           cache_read_tokens = excluded.cache_read_tokens, sidechain = excluded.sidechain \
         WHERE excluded.input_tokens + excluded.output_tokens + excluded.cache_creation_tokens \
           + excluded.cache_read_tokens > usage.input_tokens + usage.output_tokens \
           + usage.cache_creation_tokens + usage.cache_read_tokens",
    )?;
    for r in rows {
        st.execute(params![
            r.message_id,
            r.request_id,
            r.ts_ms,
            r.session_id,
            r.model,
            r.input_tokens as i64,
            r.output_tokens as i64,
            r.cache_creation_tokens as i64,
            r.cache_read_tokens as i64,
            r.sidechain
        ])?;
    }
    Ok(())
}

/// Usage since `since_ms`, oldest first, with only the time and the token counts filled in (ids,
/// session and model empty): read from the covering index `usage_by_time` alone, never from the
/// table, so that a long history costs index pages, not a row lookup per response. It runs
/// inside the write transaction of a Stop or prompt hook.
pub fn tokens_since(conn: &Connection, since_ms: i64) -> Result<Vec<UsageRow>> {
    conn.prepare_cached(
        "SELECT ts_ms, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens \
         FROM usage INDEXED BY usage_by_time WHERE ts_ms >= ?1 ORDER BY ts_ms",
    )?
    .query_map([since_ms], |r| {
        Ok(UsageRow {
            message_id: String::new(),
            request_id: String::new(),
            ts_ms: r.get(0)?,
            session_id: None,
            model: None,
            input_tokens: r.get::<_, i64>(1)? as u64,
            output_tokens: r.get::<_, i64>(2)? as u64,
            cache_creation_tokens: r.get::<_, i64>(3)? as u64,
            cache_read_tokens: r.get::<_, i64>(4)? as u64,
            sidechain: false,
        })
    })?
    .collect()
}

/// A transcript's stored cursor (JSON), if it was read before.
pub fn cursor(conn: &Connection, path: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT cursor FROM transcript_cursors WHERE path = ?1")?
        .query_row([path], |r| r.get(0))
        .optional()
}

pub fn put_cursor(conn: &Connection, path: &str, cursor: &str, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO transcript_cursors (path, cursor, updated_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![path, cursor, now_ms])?;
    Ok(())
}

/// Every stored cursor: (path, cursor JSON).
pub fn cursors(conn: &Connection) -> Result<Vec<(String, String)>> {
    conn.prepare("SELECT path, cursor FROM transcript_cursors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}
