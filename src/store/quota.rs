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

/// [`put_figure`]'s statement.
pub const PUT_FIGURE_SQL: &str = "INSERT OR REPLACE INTO quota_figures (provider, window, source, \
     used_pct, resets_at_ms, official, observed_ms, session_id, detail, projected_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Writes a figure (replacing the previous one of the same provider, window and source).
pub fn put_figure(conn: &Connection, f: &Figure) -> Result<()> {
    conn.prepare_cached(PUT_FIGURE_SQL)?.execute(params![
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

/// [`clear_figures`]'s statement.
pub const CLEAR_FIGURES_SQL: &str = "DELETE FROM quota_figures WHERE provider = ?1 AND source = ?2";

/// Removes the figures of one source (for example, estimates that no longer apply).
pub fn clear_figures(conn: &Connection, provider: &str, source: &str) -> Result<()> {
    conn.prepare_cached(CLEAR_FIGURES_SQL)?
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

/// The hour a usage row is filed under (its key's first part).
pub const USAGE_HOUR_MS: i64 = 3_600_000;

/// [`put_usage`]'s look for a stored response in its hour or the two beside it.
pub const FIND_USAGE_SQL: &str = "SELECT hour, ts_ms, input_tokens + output_tokens, \
     input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens FROM usage \
     WHERE hour IN (?1 - 1, ?1, ?1 + 1) AND message_id = ?2 AND request_id = ?3 LIMIT 1";

/// [`put_usage`]'s insert of a new response.
pub const ADD_USAGE_SQL: &str = "INSERT INTO usage (hour, message_id, request_id, ts_ms, \
     session_id, model, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, \
     sidechain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// [`put_usage`]'s update of a stored response that a larger line of it overtakes.
pub const GROW_USAGE_SQL: &str = "UPDATE usage SET input_tokens = ?4, output_tokens = ?5, \
     cache_creation_tokens = ?6, cache_read_tokens = ?7, sidechain = ?8 \
     WHERE hour = ?1 AND message_id = ?2 AND request_id = ?3";

/// [`put_usage`]'s addition to an hour of `usage_hours`: a response at `?2` and tokens to add
/// (a grown response adds the difference, its time already counted).
pub const ADD_HOUR_SQL: &str = "INSERT INTO usage_hours (hour, first_ms, last_ms, tokens, \
     all_tokens) VALUES (?1, ?2, ?2, ?3, ?4) ON CONFLICT (hour) DO UPDATE SET \
     first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms), \
     tokens = tokens + excluded.tokens, all_tokens = all_tokens + excluded.all_tokens";

/// The statements [`put_usage`] runs, to compile before a write lock.
pub const PUT_USAGE_STATEMENTS: [&str; 4] =
    [FIND_USAGE_SQL, ADD_USAGE_SQL, GROW_USAGE_SQL, ADD_HOUR_SQL];

/// Stores usage rows; a response already stored keeps the larger of the two (one response is
/// written as several transcript lines, read perhaps in different passes).
///
/// Rows are keyed by their hour first, so that the responses of one read share a page or two of
/// the table instead of one random page each. A response's lines are looked for in its own hour
/// and the two beside it, so lines up to an hour apart (a reply streamed across the hour, a copy
/// of a line) are one response; lines of one id more than an hour apart would count twice. Keeps
/// `usage_hours` (what the estimates read) in step with every row it adds or grows.
pub fn put_usage(conn: &Connection, rows: &[UsageRow]) -> Result<()> {
    let mut find = conn.prepare_cached(FIND_USAGE_SQL)?;
    let mut add = conn.prepare_cached(ADD_USAGE_SQL)?;
    let mut grow = conn.prepare_cached(GROW_USAGE_SQL)?;
    let mut add_hour = conn.prepare_cached(ADD_HOUR_SQL)?;
    // In key order: a large read (the first of a long history) then walks the table's pages
    // once, in order, instead of jumping between them.
    let mut in_order: Vec<&UsageRow> = rows.iter().collect();
    in_order.sort_unstable_by(|a, b| {
        (a.ts_ms / USAGE_HOUR_MS, &a.message_id, &a.request_id).cmp(&(
            b.ts_ms / USAGE_HOUR_MS,
            &b.message_id,
            &b.request_id,
        ))
    });
    for r in in_order {
        let hour = r.ts_ms / USAGE_HOUR_MS;
        let counted = (r.input_tokens + r.output_tokens) as i64;
        let total = r.total() as i64;
        let stored: Option<(i64, i64, i64, i64)> = find
            .query_row(params![hour, r.message_id, r.request_id], |s| {
                Ok((s.get(0)?, s.get(1)?, s.get(2)?, s.get(3)?))
            })
            .optional()?;
        match stored {
            None => {
                add.execute(params![
                    hour,
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
                add_hour.execute(params![hour, r.ts_ms, counted, total])?;
            }
            Some((at_hour, at_ms, was_counted, was_total)) if total > was_total => {
                grow.execute(params![
                    at_hour,
                    r.message_id,
                    r.request_id,
                    r.input_tokens as i64,
                    r.output_tokens as i64,
                    r.cache_creation_tokens as i64,
                    r.cache_read_tokens as i64,
                    r.sidechain
                ])?;
                add_hour.execute(params![
                    at_hour,
                    at_ms,
                    counted - was_counted,
                    total - was_total
                ])?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// [`tokens_since`]'s statement.
pub const TOKENS_SINCE_SQL: &str = "SELECT ts_ms, input_tokens, output_tokens, \
     cache_creation_tokens, cache_read_tokens \
     FROM usage INDEXED BY usage_by_time WHERE ts_ms >= ?1 ORDER BY ts_ms";

/// Usage since `since_ms`, oldest first, with only the time and the token counts filled in (ids,
/// session and model empty): read from the covering index `usage_by_time` alone, never from the
/// table, so that a long history costs index pages, not a row lookup per response. It runs
/// inside the write transaction of a Stop or prompt hook.
pub fn tokens_since(conn: &Connection, since_ms: i64) -> Result<Vec<UsageRow>> {
    conn.prepare_cached(TOKENS_SINCE_SQL)?
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

/// One hour of stored usage (`usage_hours`, or the part of an hour after a cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourUsage {
    pub first_ms: i64,
    pub last_ms: i64,
    /// Input + output tokens.
    pub tokens: u64,
    /// All four kinds.
    pub all_tokens: u64,
}

/// The responses of one hour at or after a time: the hour a cut falls in, from its rows.
pub const PART_HOUR_SQL: &str = "SELECT min(ts_ms), max(ts_ms), \
     coalesce(sum(input_tokens + output_tokens), 0), coalesce(sum(input_tokens + output_tokens \
     + cache_creation_tokens + cache_read_tokens), 0) FROM usage WHERE hour = ?1 AND ts_ms >= ?2";

/// The hours after one, oldest first.
pub const HOURS_AFTER_SQL: &str = "SELECT first_ms, last_ms, tokens, all_tokens FROM usage_hours \
     WHERE hour > ?1 ORDER BY hour";

/// Usage since `since_ms` hour by hour, oldest first: the hour `since_ms` falls in from its own
/// rows (those at or after it), every later hour from `usage_hours`. Reads at most one hour of
/// rows however long the history, so it can run inside a hook's write.
pub fn hours_since(conn: &Connection, since_ms: i64) -> Result<Vec<HourUsage>> {
    let mut out: Vec<HourUsage> = part_hour(conn, since_ms)?.into_iter().collect();
    out.extend(hours_after(conn, since_ms / USAGE_HOUR_MS)?);
    Ok(out)
}

/// The responses at or after `since_ms` in the hour it falls in, from their rows.
pub fn part_hour(conn: &Connection, since_ms: i64) -> Result<Option<HourUsage>> {
    conn.prepare_cached(PART_HOUR_SQL)?.query_row(
        params![since_ms / USAGE_HOUR_MS, since_ms],
        |r| {
            Ok(
                match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                    (Some(first_ms), Some(last_ms)) => Some(HourUsage {
                        first_ms,
                        last_ms,
                        tokens: r.get::<_, i64>(2)? as u64,
                        all_tokens: r.get::<_, i64>(3)? as u64,
                    }),
                    _ => None,
                },
            )
        },
    )
}

/// The stored hours after `hour`, oldest first.
pub fn hours_after(conn: &Connection, hour: i64) -> Result<Vec<HourUsage>> {
    conn.prepare_cached(HOURS_AFTER_SQL)?
        .query_map([hour], |r| {
            Ok(HourUsage {
                first_ms: r.get(0)?,
                last_ms: r.get(1)?,
                tokens: r.get::<_, i64>(2)? as u64,
                all_tokens: r.get::<_, i64>(3)? as u64,
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

/// [`put_cursor`]'s statement.
pub const PUT_CURSOR_SQL: &str =
    "INSERT OR REPLACE INTO transcript_cursors (path, cursor, updated_ms) VALUES (?1, ?2, ?3)";

pub fn put_cursor(conn: &Connection, path: &str, cursor: &str, now_ms: i64) -> Result<()> {
    conn.prepare_cached(PUT_CURSOR_SQL)?
        .execute(params![path, cursor, now_ms])?;
    Ok(())
}

/// Every stored cursor: (path, cursor JSON).
pub fn cursors(conn: &Connection) -> Result<Vec<(String, String)>> {
    conn.prepare("SELECT path, cursor FROM transcript_cursors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::time::Duration;

    const H: i64 = USAGE_HOUR_MS;

    fn row(id: &str, ts_ms: i64, input: u64) -> UsageRow {
        UsageRow {
            message_id: id.into(),
            request_id: format!("req_{id}"),
            ts_ms,
            session_id: Some("s".into()),
            model: None,
            input_tokens: input,
            output_tokens: 1,
            cache_creation_tokens: 0,
            cache_read_tokens: 0,
            sidechain: false,
        }
    }

    fn stored(store: &mut Store) -> Vec<(i64, String, i64, i64)> {
        let conn = store.reader().unwrap();
        let mut st = conn
            .prepare("SELECT hour, message_id, ts_ms, input_tokens FROM usage ORDER BY 1, 2")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_response_is_one_row_across_reads_and_neighbouring_hours_and_keeps_its_largest_line() {
        let dir = std::env::temp_dir().join(format!("ah-usage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("h.db"), Duration::from_secs(1)).unwrap();
        let t = 500_000 * H - 10; // 10 ms before an hour starts
        let mut put = |rows: Vec<UsageRow>| {
            store
                .write(|tx| {
                    put_usage(tx, &rows).unwrap();
                    Ok(())
                })
                .unwrap()
        };
        put(vec![row("a", t, 10), row("b", t, 10)]);
        // The rest of "a" streamed into the next hour; "b" seen again, smaller, an hour on.
        put(vec![row("a", t + 20, 30), row("b", t + H, 5)]);
        // "c" first seen in the later hour, then a smaller line of it from the hour before.
        put(vec![row("c", t + 20, 7)]);
        put(vec![row("c", t, 3)]);
        // Lines of one id more than an hour apart are two responses (documented).
        put(vec![row("d", t, 1)]);
        put(vec![row("d", t + 2 * H + 20, 2)]);
        let hour = t / H;
        assert_eq!(
            stored(&mut store),
            vec![
                (hour, "a".into(), t, 30),
                (hour, "b".into(), t, 10),
                (hour, "d".into(), t, 1),
                (hour + 1, "c".into(), t + 20, 7),
                (hour + 3, "d".into(), t + 2 * H + 20, 2),
            ]
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Whatever the order, the batching and the hours they fall in, lines of a response that
        /// lie within an hour of each other are one row holding the largest of them.
        #[test]
        fn lines_within_an_hour_are_one_response_with_the_largest_total(
            lines in proptest::collection::vec((0..6u8, 0..H, 0..1_000u64), 1..40),
            start in 0..H,
            cuts in proptest::collection::vec(0..40usize, 0..4),
        ) {
            let dir = std::env::temp_dir().join(format!(
                "ah-usage-prop-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut store = Store::open(&dir.join("h.db"), Duration::from_secs(1)).unwrap();
            let t0 = 490_000 * H + start;
            let rows: Vec<UsageRow> = lines
                .iter()
                .map(|&(id, at, input)| row(&format!("m{id}"), t0 + at, input))
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows.len())).collect();
            cuts.extend([0, rows.len()]);
            cuts.sort();
            for pair in cuts.windows(2) {
                let batch = &rows[pair[0]..pair[1]];
                store.write(|tx| { put_usage(tx, batch).unwrap(); Ok(()) }).unwrap();
            }
            let mut want = std::collections::BTreeMap::new();
            for r in &rows {
                let best = want.entry(r.message_id.clone()).or_insert(0);
                *best = (*best).max(r.input_tokens as i64);
            }
            let got: std::collections::BTreeMap<String, i64> = stored(&mut store)
                .into_iter()
                .map(|(_, id, _, input)| (id, input))
                .collect();
            let rows_stored = stored(&mut store).len();
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
            proptest::prop_assert_eq!(rows_stored, want.len());
            proptest::prop_assert_eq!(got, want);
        }
    }
}
