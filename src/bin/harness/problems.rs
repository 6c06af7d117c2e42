//! The problems the hooks logged, as `status` and `doctor` show them: only recent ones, each with
//! its age, so that a problem fixed last week does not read as today's.

use std::path::Path;

use chrono::DateTime;

/// A logged problem counts as recent for this long.
pub const RECENT_MS: i64 = 24 * 60 * 60 * 1000;

/// How many log lines, from the end, are looked at.
const LOOK_BACK: usize = 200;

/// One line of the log: `<RFC 3339 time> <source>[<pid>]: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// When it was logged; None for a line without a readable time.
    pub ts_ms: Option<i64>,
    /// The line without its time.
    pub text: String,
    /// The whole line as logged.
    pub line: String,
}

impl Problem {
    pub fn parse(line: &str) -> Problem {
        let (ts_ms, text) = match line.split_once(' ') {
            Some((time, rest)) => match DateTime::parse_from_rfc3339(time) {
                Ok(t) => (Some(t.timestamp_millis()), rest),
                Err(_) => (None, line),
            },
            None => (None, line),
        };
        Problem {
            ts_ms,
            text: text.to_owned(),
            line: line.to_owned(),
        }
    }

    /// `3m ago: harness-pre-tool-use[42]: ...`.
    pub fn shown(&self, now_ms: i64) -> String {
        match self.ts_ms {
            Some(t) => format!("{}: {}", crate::fmt::ago(now_ms, t), self.text),
            None => self.text.clone(),
        }
    }
}

/// What the log says now.
#[derive(Debug, Default)]
pub struct Problems {
    /// The newest problems logged within [`RECENT_MS`], oldest first, at most the `n` asked for.
    pub recent: Vec<Problem>,
    /// How many of the lines looked at are older than that (or have no time).
    pub older: usize,
}

/// The last `n` recent problems in the log at `log`.
pub fn read(log: &Path, now_ms: i64, n: usize) -> Problems {
    let mut out = Problems::default();
    for line in agent_harness::log::tail(log, LOOK_BACK) {
        let p = Problem::parse(&line);
        match p.ts_ms {
            Some(t) if now_ms - t <= RECENT_MS => out.recent.push(p),
            _ => out.older += 1,
        }
    }
    let extra = out.recent.len().saturating_sub(n);
    out.recent.drain(..extra);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_gives_its_time_and_text() {
        let p = Problem::parse("2026-11-21T10:00:00.000Z harness-stop[7]: disk full");
        assert_eq!(p.ts_ms, Some(1_795_255_200_000));
        assert_eq!(p.text, "harness-stop[7]: disk full");
        assert_eq!(
            p.shown(1_795_255_200_000 + 180_000),
            "3m ago: harness-stop[7]: disk full"
        );
        let odd = Problem::parse("no time here");
        assert_eq!(odd.ts_ms, None);
        assert_eq!(odd.text, "no time here");
    }
}
