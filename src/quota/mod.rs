//! Quota: how much headroom each provider has, from the best source at hand, each figure marked
//! official or estimated.
//!
//! Sources, best first:
//! 1. Claude Code's status line input (`rate_limits.five_hour` / `seven_day`: official, for
//!    subscribers), recorded by `harness statusline`;
//! 2. an actual rate-limit error (StopFailure `rate_limit`, a Gemini run's quota error): the
//!    provider is exhausted until the reset the error names, else the last official reset, else
//!    the end of the current 5-hour block (Claude) or midnight Pacific (Gemini);
//! 3. Claude usage read from transcripts, summed into 5-hour blocks (as ccusage forms them) and 7
//!    days, against the plan's budget (`quota.plan`): estimates;
//! 4. Gemini requests of the harness's own runs since midnight Pacific, against
//!    `quota.gemini_daily_requests`: an estimate.
//!
//! Owns loading and combining; deciding what to do is `policy::quota`'s.

pub mod ingest;
pub mod statusline;

use rusqlite::{Connection, Result};

use crate::config::QuotaConfig;
use crate::store::quota::{self as q, UsageRow};
use crate::time::{last_pacific_midnight, local_clock, next_pacific_midnight, span};

pub const FIVE_HOURS_MS: i64 = 5 * 3_600_000;
pub const WEEK_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Claude,
    Gemini,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Claude => "claude",
            Provider::Gemini => "gemini",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Claude => "Claude",
            Provider::Gemini => "Gemini",
        }
    }
}

/// How full one window of one provider is.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub provider: Provider,
    /// `five_hour`, `seven_day` or `day`.
    pub name: &'static str,
    /// Percent used; None when only an amount is known (no budget configured).
    pub used_pct: Option<f64>,
    /// When it resets, if known.
    pub resets_at_ms: Option<i64>,
    /// Claude Code's own figure (true) or the harness's estimate (false).
    pub official: bool,
    /// What the estimate counts, for people: `120 of 1000 requests`, `35k tokens`.
    pub detail: Option<String>,
    /// Estimates: when the budget runs out at the current rate.
    pub projected_out_ms: Option<i64>,
}

impl Window {
    pub fn label(&self) -> &'static str {
        match self.name {
            "five_hour" => "5h",
            "seven_day" => "7d",
            "day" => "today",
            other => other,
        }
    }

    /// `5h 72% (official, resets 14:00)`.
    pub fn describe(&self, now_ms: i64) -> String {
        let amount = match (self.used_pct, &self.detail) {
            (Some(p), Some(d)) if !self.official => format!("{p:.0}% ({d})"),
            (Some(p), _) => format!("{p:.0}%"),
            (None, Some(d)) => d.clone(),
            (None, None) => "?".into(),
        };
        let kind = if self.official {
            "official"
        } else {
            "estimated"
        };
        let reset = self
            .resets_at_ms
            .map(|r| format!(", resets {} (in {})", local_clock(r), span(r - now_ms)))
            .unwrap_or_default();
        format!("{} {amount} ({kind}{reset})", self.label())
    }
}

/// A provider that answered with a rate-limit or quota error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    pub since_ms: i64,
    pub until_ms: i64,
    /// How `until_ms` is known.
    pub until_from: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderQuota {
    pub windows: Vec<Window>,
    pub exhausted: Option<Exhausted>,
}

impl ProviderQuota {
    /// The fullest window with a percentage, preferring official figures on a tie.
    pub fn tightest(&self) -> Option<&Window> {
        self.windows
            .iter()
            .filter(|w| w.used_pct.is_some())
            .max_by(|a, b| {
                a.used_pct
                    .partial_cmp(&b.used_pct)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.official.cmp(&b.official))
            })
    }
}

/// Both providers' quota.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    pub claude: ProviderQuota,
    pub gemini: ProviderQuota,
}

impl Quota {
    pub fn of(&self, p: Provider) -> &ProviderQuota {
        match p {
            Provider::Claude => &self.claude,
            Provider::Gemini => &self.gemini,
        }
    }
}

/// A 5-hour block as ccusage forms them: it starts at the hour of its first response and takes
/// every response within 5 hours of that; a response after the block ends (or after a gap of 5
/// hours) starts the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start_ms: i64,
    pub end_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Input + output tokens (what the budgets count).
    pub tokens: u64,
    /// All four kinds, for display.
    pub all_tokens: u64,
}

/// Groups usage (oldest first) into blocks.
pub fn blocks(rows: &[UsageRow]) -> Vec<Block> {
    blocks_of(
        rows.iter()
            .map(|r| (r.ts_ms, r.input_tokens + r.output_tokens, r.total())),
    )
}

/// Groups stored hours (oldest first) into the same blocks as their responses: a block starts
/// and ends on an hour, so an hour's responses all fall in one block, and its first and last
/// response are all the block needs of their times.
pub fn blocks_of_hours(hours: &[q::HourUsage]) -> Vec<Block> {
    blocks_of(
        hours
            .iter()
            .flat_map(|h| [(h.first_ms, h.tokens, h.all_tokens), (h.last_ms, 0, 0)]),
    )
}

/// Blocks of (time, input + output tokens, all tokens), oldest first.
fn blocks_of(activity: impl Iterator<Item = (i64, u64, u64)>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for (ts_ms, counted, all) in activity {
        match out.last_mut() {
            // Rows come oldest first, so one inside the block's five hours is never five hours
            // after its last activity either.
            Some(b) if ts_ms < b.end_ms => {
                b.tokens += counted;
                b.all_tokens += all;
                b.last_ms = b.last_ms.max(ts_ms);
            }
            _ => {
                let start = ts_ms - ts_ms.rem_euclid(3_600_000);
                out.push(Block {
                    start_ms: start,
                    end_ms: start + FIVE_HOURS_MS,
                    first_ms: ts_ms,
                    last_ms: ts_ms,
                    tokens: counted,
                    all_tokens: all,
                });
            }
        }
    }
    out
}

fn short_tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.0}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// How far back the current 5-hour block is looked for (a block chain longer than this is
/// treated as starting here).
pub const BLOCK_LOOKBACK_MS: i64 = 2 * 86_400_000;

/// Claude estimates from transcript usage: `recent` holds the rows of the last
/// [`BLOCK_LOOKBACK_MS`], oldest first; `week_tokens` the input + output tokens of 7 days.
pub fn claude_estimates(
    recent: &[UsageRow],
    week_tokens: u64,
    cfg: &QuotaConfig,
    now_ms: i64,
) -> Vec<Window> {
    estimates_of(blocks(recent).pop(), week_tokens, cfg, now_ms)
}

/// Claude estimates from the last block of the lookback and the week's tokens.
fn estimates_of(
    last_block: Option<Block>,
    week_tokens: u64,
    cfg: &QuotaConfig,
    now_ms: i64,
) -> Vec<Window> {
    let (block_budget, week_budget) = cfg.budgets();
    let mut out = Vec::new();
    if let Some(b) = last_block
        && b.end_ms > now_ms
    {
        let pct = block_budget.map(|budget| b.tokens as f64 * 100.0 / budget.max(1) as f64);
        // Burn rate over the block so far, and when the budget runs out at that rate.
        let elapsed = (now_ms - b.first_ms).max(60_000);
        let projected = block_budget.and_then(|budget| {
            let left = budget.saturating_sub(b.tokens) as f64;
            let rate = b.tokens as f64 / elapsed as f64;
            (rate > 0.0).then(|| now_ms + (left / rate) as i64)
        });
        let detail = match block_budget {
            Some(budget) => format!(
                "{} of {} tokens",
                short_tokens(b.tokens),
                short_tokens(budget)
            ),
            None => format!("{} tokens", short_tokens(b.tokens)),
        };
        out.push(Window {
            provider: Provider::Claude,
            name: "five_hour",
            used_pct: pct,
            resets_at_ms: Some(b.end_ms),
            official: false,
            detail: Some(detail),
            projected_out_ms: projected.filter(|p| *p < b.end_ms),
        });
    }
    let week = week_tokens;
    if week > 0 {
        out.push(Window {
            provider: Provider::Claude,
            name: "seven_day",
            used_pct: week_budget.map(|b| week as f64 * 100.0 / b.max(1) as f64),
            resets_at_ms: None,
            official: false,
            detail: Some(match week_budget {
                Some(b) => format!("{} of {} tokens", short_tokens(week), short_tokens(b)),
                None => format!("{} tokens", short_tokens(week)),
            }),
            projected_out_ms: None,
        });
    }
    out
}

/// The statements [`refresh_estimates`] runs, to compile before a write lock.
pub const ESTIMATES_STATEMENTS: [&str; 4] = [
    q::PART_HOUR_SQL,
    q::HOURS_AFTER_SQL,
    q::CLEAR_FIGURES_SQL,
    q::PUT_FIGURE_SQL,
];

/// Recomputes the Claude estimates from stored usage and stores them as figures (source
/// `transcripts`), for `load` and the status line to read cheaply.
///
/// It reads the stored hours of the week (at most 169 rows and the rows of the two hours the
/// week and the lookback start in), not every response: it runs inside a hook's write.
pub fn refresh_estimates(conn: &Connection, cfg: &QuotaConfig, now_ms: i64) -> Result<()> {
    let lookback = now_ms - BLOCK_LOOKBACK_MS;
    let week_hours = q::hours_since(conn, now_ms - WEEK_MS)?;
    let week: u64 = week_hours.iter().map(|h| h.tokens).sum();
    // The lookback's hours are the week's last ones, but for the hour the lookback starts in,
    // which counts only from the cut.
    let lookback_hour = lookback / q::USAGE_HOUR_MS;
    let mut recent: Vec<q::HourUsage> = q::part_hour(conn, lookback)?.into_iter().collect();
    recent.extend(
        week_hours
            .into_iter()
            .filter(|h| h.first_ms / q::USAGE_HOUR_MS > lookback_hour),
    );
    q::clear_figures(conn, "claude", "transcripts")?;
    for w in estimates_of(blocks_of_hours(&recent).pop(), week, cfg, now_ms) {
        q::put_figure(
            conn,
            &q::Figure {
                provider: "claude".into(),
                window: w.name.into(),
                source: "transcripts".into(),
                used_pct: w.used_pct,
                resets_at_ms: w.resets_at_ms,
                official: false,
                observed_ms: now_ms,
                session_id: None,
                detail: w.detail,
                projected_ms: w.projected_out_ms,
            },
        )?;
    }
    Ok(())
}

fn window_name(name: &str) -> Option<&'static str> {
    match name {
        "five_hour" => Some("five_hour"),
        "seven_day" => Some("seven_day"),
        "day" => Some("day"),
        _ => None,
    }
}

/// Gemini runs' requests and tokens since a time (`load`).
const RUNS_SINCE_SQL: &str = "SELECT coalesce(sum(requests), 0), coalesce(sum(total_tokens), 0) \
     FROM runs WHERE created_ms >= ?1";

/// The statements [`load`] runs, to compile before a write lock (see `Store::write_prepared`).
pub const LOAD_STATEMENTS: [&str; 3] = [
    crate::store::quota::FIGURES_SQL,
    RUNS_SINCE_SQL,
    crate::store::quota::EXHAUSTION_SQL,
];

/// Loads both providers' quota from stored figures, today's runs and exhaustion: a few small
/// reads, cheap enough for every prompt and every status line refresh.
pub fn load(conn: &Connection, cfg: &QuotaConfig, now_ms: i64) -> Result<Quota> {
    let mut quota = Quota::default();
    let mut figures = q::figures(conn)?;
    // Official figures first, so that an estimate of the same window is skipped.
    figures.sort_by_key(|f| !f.official);
    for f in figures {
        let fresh = match f.resets_at_ms {
            Some(reset) => reset > now_ms,
            None => now_ms - f.observed_ms < FIVE_HOURS_MS,
        };
        let (Some(name), true, "claude") = (window_name(&f.window), fresh, f.provider.as_str())
        else {
            continue;
        };
        if quota.claude.windows.iter().any(|w| w.name == name) {
            continue;
        }
        // A budget changed since the estimate was stored: show the amount until the next one.
        let used_pct = if f.official || cfg.budgets() != (None, None) {
            f.used_pct
        } else {
            None
        };
        quota.claude.windows.push(Window {
            provider: Provider::Claude,
            name,
            used_pct,
            resets_at_ms: f.resets_at_ms,
            official: f.official,
            detail: f.detail,
            projected_out_ms: f.projected_ms,
        });
    }
    let day_start = last_pacific_midnight(now_ms);
    let (requests, tokens): (i64, i64) = conn
        .prepare_cached(RUNS_SINCE_SQL)?
        .query_row([day_start], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if requests > 0 {
        let limit = cfg.gemini_daily_requests.max(1);
        quota.gemini.windows.push(Window {
            provider: Provider::Gemini,
            name: "day",
            used_pct: Some(requests as f64 * 100.0 / limit as f64),
            resets_at_ms: Some(next_pacific_midnight(now_ms)),
            official: false,
            detail: Some(format!(
                "{requests} of {limit} requests, {} tokens",
                short_tokens(tokens as u64)
            )),
            projected_out_ms: None,
        });
    }
    for p in [Provider::Claude, Provider::Gemini] {
        if let Some(e) = q::exhaustion(conn, p.as_str())?
            && e.until_ms > now_ms
        {
            let slot = match p {
                Provider::Claude => &mut quota.claude,
                Provider::Gemini => &mut quota.gemini,
            };
            slot.exhausted = Some(Exhausted {
                since_ms: e.since_ms,
                until_ms: e.until_ms,
                until_from: e.until_from,
                reason: e.reason,
            });
        }
    }
    Ok(quota)
}

/// When a rate-limit message says its limit resets: `resets 3pm`, `resets 3:30pm`,
/// `resets 15:00` (the next such local time), or the old `...limit reached|<unix seconds>`.
pub fn reset_in_message(text: &str, now_ms: i64) -> Option<i64> {
    use chrono::{Local, NaiveTime, TimeZone};
    if let Some((_, secs)) = text.rsplit_once('|')
        && let Ok(secs) = secs.trim().parse::<i64>()
        && secs > 1_000_000_000
    {
        return Some(secs * 1000);
    }
    let lower = text.to_ascii_lowercase();
    let at = lower.find("resets ")? + "resets ".len();
    let rest = lower[at..].trim_start_matches("at ");
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    let (clock, pm, am) = if let Some(t) = token.strip_suffix("pm") {
        (t, true, false)
    } else if let Some(t) = token.strip_suffix("am") {
        (t, false, true)
    } else {
        (token.as_str(), false, false)
    };
    let (h, m) = match clock.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (clock.parse::<u32>().ok()?, 0),
    };
    if !(am || pm || clock.contains(':')) {
        return None;
    }
    let h = match (h, pm, am) {
        (12, false, true) => 0,
        (12, true, _) => 12,
        (h, true, _) => h + 12,
        (h, _, _) => h,
    };
    let time = NaiveTime::from_hms_opt(h, m, 0)?;
    let now = Local.timestamp_millis_opt(now_ms).single()?;
    let today = now.date_naive().and_time(time);
    let mut at = Local.from_local_datetime(&today).earliest()?;
    if at.timestamp_millis() <= now_ms {
        at = Local
            .from_local_datetime(&(today + chrono::Duration::days(1)))
            .earliest()?;
    }
    Some(at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % H; // on the hour

    fn row(ts: i64, input: u64, output: u64) -> UsageRow {
        UsageRow {
            message_id: format!("m{ts}"),
            request_id: "r".into(),
            ts_ms: ts,
            session_id: None,
            model: None,
            input_tokens: input,
            output_tokens: output,
            cache_creation_tokens: 0,
            cache_read_tokens: 1000,
            sidechain: false,
        }
    }

    #[test]
    fn blocks_start_on_the_hour_and_last_five_hours() {
        let rows = [
            row(T0 + 10 * 60_000, 100, 10),
            row(T0 + 4 * H, 100, 10),
            row(T0 + 5 * H + 1, 100, 10), // past the block's end
            row(T0 + 16 * H, 1, 1),       // after a long gap
        ];
        let b = blocks(&rows);
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].start_ms, b[0].end_ms, b[0].tokens),
            (T0, T0 + 5 * H, 220)
        );
        assert_eq!(b[1].start_ms, T0 + 5 * H);
        assert_eq!(b[2].start_ms, T0 + 16 * H);
        assert_eq!(b[0].all_tokens, 2220);
    }

    #[test]
    fn estimates_use_the_plan_and_project_exhaustion() {
        let cfg = QuotaConfig {
            plan: "pro".into(),
            ..QuotaConfig::default()
        };
        let rows = [row(T0 + 60_000, 20_000, 2_000)];
        let now = T0 + H + 60_000;
        let w = claude_estimates(&rows, 22_000, &cfg, now);
        let five = &w[0];
        assert_eq!(five.name, "five_hour");
        assert!(!five.official);
        assert_eq!(five.resets_at_ms, Some(T0 + 5 * H));
        assert!((five.used_pct.unwrap() - 50.0).abs() < 0.01);
        // 22k in an hour, 22k left: out in about another hour, before the block ends.
        let out = five.projected_out_ms.unwrap();
        assert!((out - (now + H)).abs() < 2 * 60_000, "{}", out - now);
        assert_eq!(five.detail.as_deref(), Some("22k of 44k tokens"));
        // Without a plan, an amount and no percentage.
        let w = claude_estimates(&rows, 22_000, &QuotaConfig::default(), now);
        assert_eq!(w[0].used_pct, None);
        assert_eq!(w[0].detail.as_deref(), Some("22k tokens"));
        // An ended block is no current block.
        assert_eq!(claude_estimates(&rows, 22_000, &cfg, T0 + 6 * H).len(), 1);
    }

    #[test]
    fn reset_times_are_read_from_rate_limit_messages() {
        use chrono::{Local, TimeZone, Timelike};
        let now = Local
            .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
            .unwrap()
            .timestamp_millis();
        let at = |ms: i64| {
            let t = Local.timestamp_millis_opt(ms).unwrap();
            (t.hour(), t.minute(), t.timestamp_millis() > now)
        };
        assert_eq!(
            at(reset_in_message("You've hit your session limit · resets 3pm", now).unwrap()),
            (15, 0, true)
        );
        assert_eq!(
            at(reset_in_message("limit · resets 3:30pm (Europe/Paris)", now).unwrap()),
            (15, 30, true)
        );
        assert_eq!(
            at(reset_in_message("resets 9am", now).unwrap()),
            (9, 0, true),
            "tomorrow"
        );
        assert_eq!(
            at(reset_in_message("resets at 12am", now).unwrap()),
            (0, 0, true)
        );
        assert_eq!(
            reset_in_message("Claude AI usage limit reached|1795300000", now),
            Some(1_795_300_000_000)
        );
        assert_eq!(
            reset_in_message("API Error: Request rejected (429)", now),
            None
        );
        assert_eq!(reset_in_message("resets soon", now), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// The blocks and week computed from the stored hours are those of the responses
        /// themselves, wherever the cuts fall and however the lines of a response were stored.
        #[test]
        fn stored_hours_give_the_blocks_and_week_of_the_responses(
            lines in proptest::collection::vec((0..30u8, 0..(9 * 24 * H), 0..5_000u64), 1..80),
            cut_in_hour in 0..H,
        ) {
            use crate::store::Store;
            use std::time::Duration;
            let dir = std::env::temp_dir().join(format!(
                "ah-hours-prop-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut store = Store::open(&dir.join("h.db"), Duration::from_secs(1)).unwrap();
            let now = T0 + 9 * 24 * H + cut_in_hour;
            // Each id's lines within one hour of its first, so they are one response.
            let rows: Vec<UsageRow> = lines
                .iter()
                .map(|&(id, at, input)| {
                    let mut r = row(T0 + at, input, input / 7);
                    r.message_id = format!("m{id}-{}", at / (2 * H));
                    r.request_id = "r".into();
                    r
                })
                .collect();
            for batch in rows.chunks(7) {
                store
                    .write(|tx| {
                        q::put_usage(tx, batch).unwrap();
                        Ok(())
                    })
                    .unwrap();
            }
            let conn = store.reader().unwrap();
            for since in [now - BLOCK_LOOKBACK_MS, now - WEEK_MS, T0 + cut_in_hour] {
                let want = blocks(&q::tokens_since(conn, since).unwrap());
                let got = blocks_of_hours(&q::hours_since(conn, since).unwrap());
                proptest::prop_assert_eq!(got, want, "since {}", since - T0);
            }
            let week: u64 = q::tokens_since(conn, now - WEEK_MS)
                .unwrap()
                .iter()
                .map(|r| r.input_tokens + r.output_tokens)
                .sum();
            let got: u64 = q::hours_since(conn, now - WEEK_MS)
                .unwrap()
                .iter()
                .map(|h| h.tokens)
                .sum();
            proptest::prop_assert_eq!(got, week);
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
