//! Claude Code's status line: `harness statusline` (and `harness-statusline`, the same without
//! clap) reads the JSON Claude Code gives a status line command, records the official rate-limit
//! figures it carries (`rate_limits.five_hour` / `seven_day`, given to subscribers after the first
//! API response), and prints one line such as
//! `Claude 5h 72% (14:00) · 7d 40% · Gemini ~120/1000 · 2 locks · ctx 34%` (`~` marks an
//! estimate).
//!
//! Claude Code re-runs it every few hundred milliseconds while a session is active, so it costs
//! what a hook costs: it reads first and takes the write lock only when a figure, the session's
//! status or its transcript changed, and renders from stored figures.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

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
/// `cost.total_cost_usd`, `context_window.used_percentage` (null before the first response).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub project_dir: Option<String>,
    pub model: Option<String>,
    pub five_hour: Option<(f64, Option<i64>)>,
    pub seven_day: Option<(f64, Option<i64>)>,
    pub cost_usd: Option<f64>,
    pub context_pct: Option<f64>,
}

impl Input {
    pub fn parse(v: &Value) -> Input {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let window = |name: &str| {
            let w = v.pointer(&format!("/rate_limits/{name}"))?;
            let pct = w.get("used_percentage")?.as_f64()?;
            let resets = w
                .get("resets_at")
                .and_then(Value::as_f64)
                .map(|s| (s * 1000.0) as i64);
            Some((pct, resets))
        };
        Input {
            session_id: s("/session_id"),
            transcript_path: s("/transcript_path"),
            project_dir: s("/workspace/project_dir").or_else(|| s("/cwd")),
            model: s("/model/display_name"),
            five_hour: window("five_hour"),
            seven_day: window("seven_day"),
            cost_usd: v.pointer("/cost/total_cost_usd").and_then(Value::as_f64),
            context_pct: v
                .pointer("/context_window/used_percentage")
                .and_then(Value::as_f64),
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
        let Some((pct, resets)) = window else {
            continue;
        };
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
                official: true,
                observed_ms: now,
                session_id: input.session_id.clone(),
                detail: None,
                projected_ms: None,
            },
        )?;
        if changed && pct < config.quota.warn_pct {
            q::rearm(tx, "claude", name)?;
        }
        if changed && pct < 99.0 && q::clear_exhaustion(tx, "claude", now)? {
            q::rearm(tx, "claude", "exhausted")?;
        }
    }
    Ok(())
}

/// A rate-limit window as the status line gives it: used percentage and reset time.
type WindowInput = Option<(f64, Option<i64>)>;

fn windows(input: &Input) -> [(&'static str, WindowInput); 2] {
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
    let figure = windows(input).into_iter().any(|(name, w)| {
        w.is_some_and(|(pct, resets)| figure_due(&stored, name, pct, resets, now).0)
    });
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
                let mut bit = format!("{} {}", w.label(), pct(p, w.official));
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
        let value = part(name, quota, locks, input);
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

/// The status line command: reads stdin, records, prints one line. Never fails: a problem leaves
/// a shorter line and a line in the harness log.
pub fn run() -> std::process::ExitCode {
    let mut bytes = Vec::new();
    let _ = std::io::stdin()
        .lock()
        .take(crate::payload::MAX_PAYLOAD_BYTES as u64)
        .read_to_end(&mut bytes);
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let input = Input::parse(&value);
    let config = Config::load().unwrap_or_default();
    let now = now_ms();
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
        store.write(|tx| {
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
            if let Ok(db) = config.db_path() {
                crate::log::append(
                    &crate::log::path_for(&db),
                    "harness-statusline",
                    &e.to_string(),
                );
            }
            (Quota::default(), 0)
        }
    };
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
        let i = Input::parse(&v);
        assert_eq!(i.five_hour, Some((72.5, Some(1_795_300_000_000))));
        assert_eq!(i.seven_day, Some((40.0, Some(1_795_800_000_000))));
        assert_eq!(i.context_pct, Some(34.0));
        assert_eq!(i.project_dir.as_deref(), Some("/p"));
        let fixture: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/claude-code-2.1.197/statusline-api-key.json"
        ))
        .unwrap();
        let i = Input::parse(&fixture);
        assert_eq!((i.five_hour, i.seven_day), (None, None));
        assert_eq!(i.context_pct, Some(0.0));
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
