//! Claude Code's status line: `harness statusline` (and `harness-statusline`, the same without
//! clap) reads the JSON Claude Code gives a status line command, records the official rate-limit
//! figures it carries (`rate_limits.five_hour` / `seven_day`, given to subscribers after the first
//! API response), and prints one line such as
//! `Claude 5h 72% (14:00) · 7d 40% · Gemini ~12/20 · 2 locks · ctx 34%` (`~` marks an
//! estimate).
//!
//! Claude Code re-runs it every few hundred milliseconds while a session is active, so it costs
//! what a hook costs: it reads first and takes the write lock only when a figure, the session's
//! status or its transcript changed, and renders from stored figures.
//!
//! Its input is from outside and read as such: at most [`crate::payload::MAX_PAYLOAD_BYTES`]
//! kept, the rest drained (so the writer never meets a broken pipe) up to [`DRAIN_MAX_BYTES`],
//! all within [`READ_TIME`]. Figures no rate limit can have (a share below 0 or above 100, a
//! reset long past or beyond the window's length) are clamped or dropped, stored as doubtful
//! (not official, so they advise and never block) and shown with a `?`.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde_json::Value;

use crate::config::Config;
use crate::quota::{self, Quota};
use crate::store::Store;
use crate::store::quota::{self as q, Figure};
use crate::time::{local_clock, now_ms};

/// What the harness uses of the status line input. Field by field: `session_id`,
/// `transcript_path`, `cwd`, `workspace.project_dir`, `model.display_name`,
/// `rate_limits.{five_hour,seven_day}.{used_percentage (0-100), resets_at (Unix seconds)}`,
/// `cost.total_cost_usd`, `context_window.used_percentage` (null before the first response), and
/// from Claude Code 2.1.332 on `prompt_cache.{warm, expires_at (Unix seconds)}` (after the first
/// request) and, for gateway users, `rate_limits.spend_limit.{used_percentage, used_usd,
/// limit_usd}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub project_dir: Option<String>,
    pub model: Option<String>,
    pub five_hour: Option<WindowInput>,
    pub seven_day: Option<WindowInput>,
    pub cost_usd: Option<f64>,
    pub context_pct: Option<f64>,
    pub prompt_cache: Option<PromptCache>,
    /// A gateway's spend limit: the share used, and the amounts when they are in US dollars.
    pub spend: Option<Spend>,
}

/// The prompt cache as Claude Code sees it: a cold cache means the next prompt pays to write the
/// whole context again, a real quota cost after a long pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptCache {
    pub warm: bool,
    /// When the cache expires (ms), if known.
    pub expires_ms: Option<i64>,
}

/// `rate_limits.spend_limit` (gateway users).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    /// Used share, 0..=100 (clamped).
    pub pct: f64,
    pub used_usd: Option<f64>,
    pub limit_usd: Option<f64>,
}

/// A warm cache closer than this to expiring is shown, so that a pause can be timed.
const CACHE_SOON_MS: i64 = 5 * 60_000;

/// One rate-limit window of the input, checked against what a window can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowInput {
    /// `used_percentage`, clamped to 0..=100 (NaN read as 0).
    pub pct: f64,
    /// `resets_at` in ms; None when absent or out of reach (long past, beyond the window).
    pub resets_ms: Option<i64>,
    /// Why the figure is not believed as given, when it is not.
    pub doubt: Option<&'static str>,
}

/// The start of a doubtful figure's `detail`, which the line shows as `?`.
const DOUBTFUL: &str = "doubtful";

/// How long before now a reset may lie and still be believed (a status line input can be a few
/// minutes stale); anything older is "long past".
const RESET_PAST_SLACK_MS: i64 = 3_600_000;

impl WindowInput {
    /// Checks one window whose length is `window_ms` at `now` (ms).
    fn check(pct: f64, resets_at_s: Option<f64>, window_ms: i64, now: i64) -> WindowInput {
        let mut doubt = None;
        let pct = if pct.is_nan() {
            doubt = Some("used_percentage is not a number");
            0.0
        } else if !(0.0..=100.0).contains(&pct) {
            doubt = Some("used_percentage outside 0-100");
            pct.clamp(0.0, 100.0)
        } else {
            pct
        };
        let resets_ms = resets_at_s.and_then(|s| {
            let ms = s * 1000.0;
            // A little past the window's length (an hour) for clocks that disagree.
            let reachable = ms.is_finite()
                && ms >= (now - RESET_PAST_SLACK_MS) as f64
                && ms <= (now + window_ms + 3_600_000) as f64;
            if reachable {
                Some(ms as i64)
            } else {
                doubt = doubt.or(Some("resets_at long past or beyond the window"));
                None
            }
        });
        WindowInput {
            pct,
            resets_ms,
            doubt,
        }
    }
}

impl Input {
    /// Reads the input at `now` (ms since the epoch), checking the rate-limit figures.
    pub fn parse(v: &Value, now: i64) -> Input {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let window = |name: &str, window_ms: i64| {
            let w = v.pointer(&format!("/rate_limits/{name}"))?;
            let pct = w.get("used_percentage")?.as_f64()?;
            let resets = w.get("resets_at").and_then(Value::as_f64);
            Some(WindowInput::check(pct, resets, window_ms, now))
        };
        Input {
            session_id: s("/session_id"),
            transcript_path: s("/transcript_path"),
            project_dir: s("/workspace/project_dir").or_else(|| s("/cwd")),
            model: s("/model/display_name"),
            five_hour: window("five_hour", 5 * 3_600_000),
            seven_day: window("seven_day", 7 * 86_400_000),
            cost_usd: v.pointer("/cost/total_cost_usd").and_then(Value::as_f64),
            context_pct: v
                .pointer("/context_window/used_percentage")
                .and_then(Value::as_f64),
            prompt_cache: v.get("prompt_cache").and_then(|c| {
                Some(PromptCache {
                    warm: c.get("warm")?.as_bool()?,
                    expires_ms: c
                        .get("expires_at")
                        .and_then(Value::as_f64)
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(|s| (s * 1000.0) as i64),
                })
            }),
            spend: v.pointer("/rate_limits/spend_limit").and_then(|w| {
                let pct = w.get("used_percentage")?.as_f64()?;
                let usd = |k: &str| w.get(k).and_then(Value::as_f64).filter(|x| x.is_finite());
                Some(Spend {
                    pct: if pct.is_nan() {
                        0.0
                    } else {
                        pct.clamp(0.0, 100.0)
                    },
                    used_usd: usd("used_usd"),
                    limit_usd: usd("limit_usd"),
                })
            }),
        }
    }
}

/// Writes a figure only when it changed (or a minute passed, to keep it fresh).
const REFRESH_MS: i64 = 60_000;

/// Records the official figures of one status line input; re-arms warnings and clears a
/// rate limit when new figures show recovery.
pub fn record(
    tx: &Transaction<'_>,
    input: &Input,
    config: &Config,
    now: i64,
) -> rusqlite::Result<()> {
    let stored = q::figures(tx)?;
    for (name, window) in windows(input) {
        let Some(w) = window else {
            continue;
        };
        let (pct, resets) = (w.pct, w.resets_ms);
        let (due, changed) = figure_due(&stored, name, pct, resets, now);
        if !due {
            continue;
        }
        q::put_figure(
            tx,
            &Figure {
                provider: "claude".into(),
                window: name.into(),
                source: "statusline".into(),
                used_pct: Some(pct),
                resets_at_ms: resets,
                // A doubtful figure is kept, but not as official: it advises, never blocks.
                official: w.doubt.is_none(),
                observed_ms: now,
                session_id: input.session_id.clone(),
                detail: w
                    .doubt
                    .map(|why| format!("{DOUBTFUL}: {why} in Claude Code's status line input")),
                projected_ms: None,
            },
        )?;
        // Only a believable figure shows recovery.
        if w.doubt.is_some() {
            continue;
        }
        if changed && pct < config.quota.warn_pct {
            q::rearm(tx, "claude", name)?;
        }
        if changed && pct < 99.0 && q::clear_exhaustion(tx, "claude", now)? {
            q::rearm(tx, "claude", "exhausted")?;
        }
    }
    Ok(())
}

fn windows(input: &Input) -> [(&'static str, Option<WindowInput>); 2] {
    [
        ("five_hour", input.five_hour),
        ("seven_day", input.seven_day),
    ]
}

/// Whether a window's figure is to be written (it changed, or a minute passed), and whether it
/// changed.
fn figure_due(
    stored: &[Figure],
    name: &str,
    pct: f64,
    resets: Option<i64>,
    now: i64,
) -> (bool, bool) {
    let previous = stored
        .iter()
        .find(|f| f.provider == "claude" && f.window == name && f.source == "statusline");
    let changed = previous.is_none_or(|f| f.used_pct != Some(pct) || f.resets_at_ms != resets);
    let due = changed || previous.is_none_or(|f| now - f.observed_ms >= REFRESH_MS);
    (due, changed)
}

/// Whether the session's status (model, context use, cost) is to be written: it changed, or a
/// minute passed.
fn session_due(conn: &Connection, input: &Input, now: i64) -> rusqlite::Result<bool> {
    let Some(session) = &input.session_id else {
        return Ok(false);
    };
    let same: Option<i64> = conn
        .prepare_cached(
            "SELECT observed_ms FROM session_status WHERE session_id = ?1 AND model IS ?2 \
             AND context_pct IS ?3 AND cost_usd IS ?4",
        )?
        .query_row(
            rusqlite::params![session, input.model, input.context_pct, input.cost_usd],
            |r| r.get(0),
        )
        .optional()?;
    Ok(same.is_none_or(|at| now - at >= REFRESH_MS))
}

/// Whether this input has anything to write: a figure or the session's status due, or new
/// transcript usage. Most refreshes have none and take no write lock at all.
fn anything_to_write(conn: &Connection, input: &Input, now: i64) -> rusqlite::Result<bool> {
    let stored = q::figures(conn)?;
    let figure = windows(input)
        .into_iter()
        .any(|(name, w)| w.is_some_and(|w| figure_due(&stored, name, w.pct, w.resets_ms, now).0));
    Ok(figure || session_due(conn, input, now)?)
}

/// Keeps what the session's status line showed (model, context use, cost), when it changed or
/// a minute passed.
fn record_session(tx: &Transaction<'_>, input: &Input, now: i64) -> rusqlite::Result<()> {
    let Some(session) = &input.session_id else {
        return Ok(());
    };
    if session_due(tx, input, now)? {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO session_status (session_id, observed_ms, model, context_pct, \
             cost_usd) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(rusqlite::params![
            session,
            now,
            input.model,
            input.context_pct,
            input.cost_usd
        ])?;
    }
    Ok(())
}

/// The live claims in a project.
fn locks_in(conn: &Connection, project: Option<&str>, now: i64) -> rusqlite::Result<i64> {
    let root = project
        .and_then(|p| crate::paths::project_root(Path::new(p)))
        .map(|r| r.to_string_lossy().into_owned());
    conn.query_row(
        "SELECT count(*) FROM claims WHERE expires_ms > ?1 AND (?2 IS NULL OR project_root = ?2)",
        rusqlite::params![now, root],
        |r| r.get(0),
    )
}

fn pct(p: f64, official: bool) -> String {
    format!("{}{p:.0}%", if official { "" } else { "~" })
}

/// The parts of the line, by placeholder.
fn part(name: &str, quota: &Quota, locks: i64, input: &Input) -> String {
    match name {
        "claude" => {
            if let Some(e) = &quota.claude.exhausted {
                return format!("Claude limited until {}", local_clock(e.until_ms));
            }
            let mut bits = Vec::new();
            for w in &quota.claude.windows {
                let Some(p) = w.used_pct else { continue };
                let doubtful = w.detail.as_deref().is_some_and(|d| d.starts_with(DOUBTFUL));
                let shown = if doubtful {
                    format!("{p:.0}%?")
                } else {
                    pct(p, w.official)
                };
                let mut bit = format!("{} {shown}", w.label());
                if w.name == "five_hour"
                    && let Some(r) = w.resets_at_ms
                {
                    bit.push_str(&format!(" ({})", local_clock(r)));
                }
                bits.push(bit);
            }
            if bits.is_empty() {
                String::new()
            } else {
                format!("Claude {}", bits.join(" · "))
            }
        }
        "gemini" => {
            if let Some(e) = &quota.gemini.exhausted {
                return format!("Gemini out until {}", local_clock(e.until_ms));
            }
            match quota.gemini.windows.first() {
                Some(w) => {
                    // `~120/1000`, from the detail `120 of 1000 requests, ...`.
                    let counts = w
                        .detail
                        .as_deref()
                        .and_then(|d| d.split(" requests").next())
                        .map(|d| d.replace(" of ", "/"))
                        .unwrap_or_else(|| pct(w.used_pct.unwrap_or(0.0), false));
                    format!("Gemini ~{counts}")
                }
                None => String::new(),
            }
        }
        "locks" => match locks {
            0 => String::new(),
            1 => "1 lock".into(),
            n => format!("{n} locks"),
        },
        "ctx" => input
            .context_pct
            .map(|c| format!("ctx {c:.0}%"))
            .unwrap_or_default(),
        "cost" => input
            .cost_usd
            .map(|c| format!("${c:.2}"))
            .unwrap_or_default(),
        "model" => input.model.clone().unwrap_or_default(),
        "cache" => match input.prompt_cache {
            Some(PromptCache { warm: false, .. }) => "cache cold".into(),
            Some(PromptCache {
                warm: true,
                expires_ms: Some(at),
            }) => {
                let left = at - now_ms();
                if (0..CACHE_SOON_MS).contains(&left) {
                    format!("cache {}m left", (left + 59_999) / 60_000)
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        },
        "spend" => match input.spend {
            Some(Spend {
                pct,
                used_usd: Some(u),
                limit_usd: Some(l),
            }) => format!("spend {pct:.0}% (${u:.2}/${l:.2})"),
            Some(s) => format!("spend {:.0}%", s.pct),
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// Renders `format`: placeholders are replaced, and a part with nothing to show is dropped
/// together with the separator before it.
pub fn render(format: &str, quota: &Quota, locks: i64, input: &Input) -> String {
    let mut out = String::new();
    // The literal text before the next part: written only between two parts that show something.
    let mut sep = String::new();
    let (mut seen_part, mut any) = (false, false);
    let mut rest = format;
    loop {
        let (literal, field) = match rest.find('{') {
            Some(open) if rest[open..].contains('}') => {
                let close = open + rest[open..].find('}').unwrap_or(0);
                let field = &rest[open + 1..close];
                let literal = &rest[..open];
                rest = &rest[close + 1..];
                (literal, Some(field))
            }
            _ => {
                let literal = rest;
                rest = "";
                (literal, None)
            }
        };
        match (seen_part, field) {
            (false, _) => out.push_str(literal),
            (true, Some(_)) => sep = literal.to_owned(),
            (true, None) if any => out.push_str(literal),
            (true, None) => {}
        }
        let Some(name) = field else { break };
        seen_part = true;
        // Parts can carry recorded text (a model name): shown, never obeyed. The format's own
        // literal text is the user's, colours included.
        let value = crate::text::one_line(&part(name, quota, locks, input));
        if !value.is_empty() {
            if any {
                out.push_str(&sep);
            }
            out.push_str(&value);
            any = true;
        }
    }
    out.trim().to_owned()
}

/// The most bytes read and thrown away past the kept input, so that the writer is not cut off.
pub const DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The longest the input is waited for, kept and drained: a writer that neither writes nor
/// closes cannot hold the line.
pub const READ_TIME: Duration = Duration::from_secs(2);

/// Reads at most `keep` bytes of `r` and drains what follows up to `drain` more bytes, all within
/// `time`. Returns the kept bytes and whether they are the whole input (EOF came in time, within
/// `keep`).
pub fn read_input(
    mut r: impl Read + AsFd,
    keep: usize,
    drain: u64,
    time: Duration,
) -> (Vec<u8>, bool) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let deadline = Instant::now() + time;
    let mut kept = Vec::with_capacity(8 * 1024);
    let mut drained = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (kept, false);
        }
        // Wait until a read cannot block (data, EOF or an error), at most until the deadline.
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&r, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return (kept, false),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return (kept, false),
        }
        match r.read(&mut buf) {
            Ok(0) => {
                let whole = drained == 0;
                return (kept, whole);
            }
            Ok(n) => {
                let room = keep.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
                drained += (n - room) as u64;
                if drained > drain {
                    return (kept, false);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (kept, false),
        }
    }
}

/// The status line command: reads stdin, records, prints one line. Never fails: a problem leaves
/// a shorter line and a line in the harness log.
pub fn run() -> std::process::ExitCode {
    crate::store::tune_for_short_process();
    let (bytes, whole) = read_input(
        std::io::stdin().lock(),
        crate::payload::MAX_PAYLOAD_BYTES,
        DRAIN_MAX_BYTES,
        READ_TIME,
    );
    // An input cut short is not parsed: its figures are not known to be whole.
    let value: Value = if whole {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let now = now_ms();
    let input = Input::parse(&value, now);
    let mut problems = Vec::new();
    let config = Config::load().unwrap_or_else(|e| {
        problems.push(format!("{e}; using defaults"));
        Config::default()
    });
    if !whole {
        problems.push(format!(
            "status line input over {} MiB or not closed within {} s: not read",
            crate::payload::MAX_PAYLOAD_BYTES >> 20,
            READ_TIME.as_secs()
        ));
    }
    let result = (|| -> crate::error::Result<(Quota, i64)> {
        let db = config.db_path()?;
        // A status line must not wait long for the store; the next refresh tries again.
        let mut store = Store::open(&db, Duration::from_millis(150))?;
        let wrap = |e| crate::error::Error::db("update quota in", &db, e);
        // Read first (the transcript too), without the write lock; write only what changed.
        let conn = store.reader()?;
        let read = match &input.transcript_path {
            Some(path) => {
                quota::ingest::read_one(conn, Path::new(path), quota::ingest::HOOK_MAX_NEW_BYTES)
                    .map_err(wrap)?
            }
            None => None,
        };
        let show = |conn: &Connection| -> crate::error::Result<(Quota, i64)> {
            let quota = quota::load(conn, &config.quota, now).map_err(wrap)?;
            let locks = locks_in(conn, input.project_dir.as_deref(), now).map_err(wrap)?;
            Ok((quota, locks))
        };
        if read.is_none() && !anything_to_write(conn, &input, now).map_err(wrap)? {
            return show(conn);
        }
        // What `show` and the transcript's store run are compiled before the lock.
        let mut statements = quota::LOAD_STATEMENTS.to_vec();
        if let Some(read) = &read {
            statements.extend(read.statements());
        }
        store.write_prepared(&statements, |tx| {
            record(tx, &input, &config, now).map_err(wrap)?;
            record_session(tx, &input, now).map_err(wrap)?;
            if let Some(read) = read {
                quota::ingest::store_one(tx, read, &config.quota, now).map_err(wrap)?;
            }
            show(tx)
        })
    })();
    let (quota, locks) = match result {
        Ok(v) => v,
        Err(e) => {
            problems.push(e.to_string());
            (Quota::default(), 0)
        }
    };
    if !problems.is_empty()
        && let Ok(db) = config.db_path()
    {
        crate::log::append(
            &crate::log::path_for(&db),
            "harness-statusline",
            &problems.join("; "),
        );
    }
    let line = render(&config.statusline.format, &quota, locks, &input);
    println!("{line}");
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Provider, ProviderQuota, Window};
    use serde_json::json;

    #[test]
    fn the_subscriber_input_is_read_and_the_api_key_one_has_no_rate_limits() {
        let v = json!({"session_id": "s", "model": {"display_name": "Opus 4.8"},
            "workspace": {"project_dir": "/p"},
            "rate_limits": {"five_hour": {"used_percentage": 72.5, "resets_at": 1795300000},
                            "seven_day": {"used_percentage": 40, "resets_at": 1795800000}},
            "cost": {"total_cost_usd": 0.42}, "context_window": {"used_percentage": 34}});
        let now = 1_795_290_000_000;
        let i = Input::parse(&v, now);
        let sure = |pct, ms| {
            Some(WindowInput {
                pct,
                resets_ms: Some(ms),
                doubt: None,
            })
        };
        assert_eq!(i.five_hour, sure(72.5, 1_795_300_000_000));
        assert_eq!(i.seven_day, sure(40.0, 1_795_800_000_000));
        assert_eq!(i.context_pct, Some(34.0));
        assert_eq!(i.project_dir.as_deref(), Some("/p"));
        let fixture: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/claude-code-2.1.197/statusline-api-key.json"
        ))
        .unwrap();
        let i = Input::parse(&fixture, now);
        assert_eq!((i.five_hour, i.seven_day), (None, None));
        assert_eq!(i.context_pct, Some(0.0));
    }

    #[test]
    fn a_cold_or_expiring_cache_and_a_spend_limit_are_shown_from_2_1_332s_input() {
        let now = now_ms();
        let v = json!({"prompt_cache": {"warm": false, "requests": 3, "expires_at": null},
                       "rate_limits": {"spend_limit": {"used_percentage": 41.6,
                                       "used_usd": 20.8, "limit_usd": 50.0}}});
        let i = Input::parse(&v, now);
        let q = Quota::default();
        assert_eq!(
            render("{cache} · {spend}", &q, 0, &i),
            "cache cold · spend 42% ($20.80/$50.00)"
        );
        let soon = (now + 2 * 60_000) / 1000;
        let v = json!({"prompt_cache": {"warm": true, "expires_at": soon}});
        assert_eq!(
            render("{cache}", &q, 0, &Input::parse(&v, now)),
            "cache 2m left"
        );
        let later = (now + 50 * 60_000) / 1000;
        let v = json!({"prompt_cache": {"warm": true, "expires_at": later}});
        assert_eq!(render("{model} {cache}", &q, 0, &Input::parse(&v, now)), "");
        // 2.1.197 sends neither: nothing shows.
        assert_eq!(render("{cache}{spend}", &q, 0, &Input::default()), "");
    }

    #[test]
    fn absurd_figures_are_clamped_and_marked_doubtful() {
        let now = 1_800_000_000_000i64;
        let secs = |ms: i64| ms as f64 / 1000.0;
        let check =
            |pct: f64, reset: Option<f64>| WindowInput::check(pct, reset, 5 * 3_600_000, now);
        let ok = check(72.0, Some(secs(now + 3_600_000)));
        assert_eq!((ok.pct, ok.doubt), (72.0, None));
        assert_eq!(ok.resets_ms, Some(now + 3_600_000));
        for (pct, want) in [
            (-5.0, 0.0),
            (250.0, 100.0),
            (f64::NAN, 0.0),
            (f64::INFINITY, 100.0),
        ] {
            let w = check(pct, None);
            assert_eq!(w.pct, want, "{pct}");
            assert!(w.doubt.is_some(), "{pct}");
        }
        for reset in [
            secs(now - 2 * 86_400_000),
            secs(now + 30 * 86_400_000),
            1e300,
            f64::NAN,
        ] {
            let w = check(50.0, Some(reset));
            assert_eq!(w.resets_ms, None, "{reset}");
            assert!(w.doubt.is_some(), "{reset}");
            assert_eq!(w.pct, 50.0);
        }
        // The seven-day window may reset days ahead; the five-hour one may not.
        let week = WindowInput::check(10.0, Some(secs(now + 6 * 86_400_000)), 7 * 86_400_000, now);
        assert_eq!(week.doubt, None);
        assert!(
            check(10.0, Some(secs(now + 6 * 86_400_000)))
                .doubt
                .is_some()
        );
        // Read from JSON as Claude Code would send it.
        let v = json!({"rate_limits": {"five_hour": {"used_percentage": 1e6, "resets_at": 1}}});
        let w = Input::parse(&v, now).five_hour.unwrap();
        assert_eq!((w.pct, w.resets_ms), (100.0, None));
        assert!(w.doubt.is_some());
    }

    #[test]
    fn a_doubtful_figure_is_shown_with_a_question_mark_not_as_given() {
        let quota = Quota {
            claude: ProviderQuota {
                windows: vec![Window {
                    provider: Provider::Claude,
                    name: "five_hour",
                    used_pct: Some(100.0),
                    resets_at_ms: None,
                    official: false,
                    detail: Some(format!("{DOUBTFUL}: used_percentage outside 0-100")),
                    projected_out_ms: None,
                }],
                exhausted: None,
            },
            ..Quota::default()
        };
        let line = render("{claude}", &quota, 0, &Input::default());
        assert_eq!(line, "Claude 5h 100%?");
    }

    #[test]
    fn the_input_is_kept_to_a_bound_and_the_rest_drained_within_bounds() {
        use std::io::Write;
        // More than kept: the writer gets through (no broken pipe), the input is not whole.
        let (r, mut w) = std::io::pipe().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&vec![b'x'; 3 << 20]).map(|_| ()));
        let (kept, whole) = read_input(r, 1 << 20, 64 << 20, Duration::from_secs(10));
        assert!(
            writer.join().unwrap().is_ok(),
            "the writer met a broken pipe"
        );
        assert_eq!((kept.len(), whole), (1 << 20, false));
        // Within the bound: whole.
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"{\"a\":1}").unwrap();
        drop(w);
        let (kept, whole) = read_input(r, 1 << 20, 64 << 20, Duration::from_secs(10));
        assert_eq!((kept.as_slice(), whole), (&b"{\"a\":1}"[..], true));
        // A writer that neither writes nor closes: given up on in time.
        let (r, w) = std::io::pipe().unwrap();
        let started = std::time::Instant::now();
        let (kept, whole) = read_input(r, 1 << 20, 64 << 20, Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((kept.len(), whole), (0, false));
        drop(w);
        // Past the drain bound: stop reading, without waiting for the end.
        let (r, mut w) = std::io::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'y'; 1 << 20];
            while w.write_all(&chunk).is_ok() {}
        });
        let (kept, whole) = read_input(r, 1024, 4 << 20, Duration::from_secs(10));
        assert_eq!((kept.len(), whole), (1024, false));
        writer.join().unwrap();
    }

    #[test]
    fn the_line_drops_empty_parts_and_marks_estimates() {
        let now = 1_800_000_000_000;
        let w = |p, name, pct: f64, official| Window {
            provider: p,
            name,
            used_pct: Some(pct),
            resets_at_ms: Some(now + 3_600_000),
            official,
            detail: Some("120 of 1000 requests, 50k tokens".into()),
            projected_out_ms: None,
        };
        let quota = Quota {
            claude: ProviderQuota {
                windows: vec![
                    w(Provider::Claude, "five_hour", 72.0, true),
                    w(Provider::Claude, "seven_day", 40.0, true),
                ],
                exhausted: None,
            },
            gemini: ProviderQuota {
                windows: vec![w(Provider::Gemini, "day", 12.0, false)],
                exhausted: None,
            },
        };
        let input = Input {
            context_pct: Some(34.0),
            ..Input::default()
        };
        let line = render("{claude} · {gemini} · {locks} · {ctx}", &quota, 2, &input);
        assert!(line.starts_with("Claude 5h 72% ("), "{line}");
        assert!(
            line.ends_with("· 7d 40% · Gemini ~120/1000 · 2 locks · ctx 34%"),
            "{line}"
        );
        let empty = render(
            "{claude} · {gemini} · {locks} · {ctx}",
            &Quota::default(),
            0,
            &input,
        );
        assert_eq!(empty, "ctx 34%");
        let mut est = quota.clone();
        est.claude.windows[0].official = false;
        est.claude.windows.truncate(1);
        let line = render("<{claude} | {locks}", &est, 0, &input);
        assert!(line.starts_with("<Claude 5h ~72% ("), "{line}");
        assert!(
            line.ends_with(')'),
            "the separator before the empty part went: {line}"
        );
    }
}
