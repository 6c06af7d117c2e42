//! Formatting for humans: times, durations, ids, paths. Parsing of `--since`.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone};

/// A store timestamp as local clock time: `14:03:07` today, `11-20 14:03` otherwise.
pub fn clock(ts_ms: i64) -> String {
    let Some(t) = Local.timestamp_millis_opt(ts_ms).single() else {
        return "?".into();
    };
    if t.date_naive() == Local::now().date_naive() {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// RFC 3339 in UTC with milliseconds, for JSON output.
pub fn rfc3339(ts_ms: i64) -> String {
    DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

pub use agent_harness::time::span;

/// `3m ago`.
pub fn ago(now_ms: i64, ts_ms: i64) -> String {
    format!("{} ago", span(now_ms - ts_ms))
}

/// The first 8 characters of an id, as shown everywhere.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A path with the home directory written as `~`.
pub fn path(p: &str) -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && p.starts_with(&home) => {
            let rest = &p[home.len()..];
            if rest.is_empty() || rest.starts_with('/') {
                return format!("~{rest}");
            }
            p.to_owned()
        }
        _ => p.to_owned(),
    }
}

/// Parses `--since`: a span back from now (`90s`, `10m`, `2h`, `7d`), an RFC 3339 time, or a
/// local `YYYY-MM-DD[ HH:MM[:SS]]`.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let unit = |c: char| match c {
        's' => Some(1_000),
        'm' => Some(60_000),
        'h' => Some(3_600_000),
        'd' => Some(86_400_000),
        'w' => Some(7 * 86_400_000),
        _ => None,
    };
    if let Some(last) = t.chars().last()
        && let Some(ms) = unit(last)
        && let Ok(n) = t[..t.len() - 1].parse::<i64>()
    {
        return Ok(now_ms - n * ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt)
            && let Some(local) = Local.from_local_datetime(&naive).earliest()
        {
            return Ok(local.timestamp_millis());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(local) = date
            .and_hms_opt(0, 0, 0)
            .and_then(|n| Local.from_local_datetime(&n).earliest())
    {
        return Ok(local.timestamp_millis());
    }
    Err(format!(
        "cannot read --since {text:?}: use a span like 10m, 2h or 7d, or a time like \
         2026-11-21 14:00 or 2026-11-21T14:00:00Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_spans_and_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("10m", now), Ok(now - 600_000));
        assert_eq!(parse_since("2d", now), Ok(now - 172_800_000));
        assert_eq!(
            parse_since("2026-11-21T10:00:00Z", now),
            Ok(1_795_255_200_000)
        );
        assert!(parse_since("2026-11-21 10:00", now).is_ok());
        assert!(parse_since("2026-11-21", now).is_ok());
        let err = parse_since("yesterday", now).unwrap_err();
        assert!(err.contains("10m"), "{err}");
    }
}
