//! Output for people and for programs: the one writer every subcommand prints through, tables,
//! times, durations, ids, paths; parsing of `--since`.
//!
//! Every line for a person goes through [`Out::line`] or [`Out::block`], which pass it through
//! `agent_harness::text` (recorded strings can carry terminal escapes); JSON goes through
//! [`Out::json`], exact but with C1, DEL and bidi characters written as `\u` escapes.

use std::io::{self, Write};

use agent_harness::text;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone};
use serde::Serialize;

/// Where a subcommand prints: stdout, made safe for a terminal.
pub struct Out<W: Write = io::StdoutLock<'static>> {
    w: W,
}

/// The process's stdout, locked.
pub fn out() -> Out {
    Out {
        w: io::stdout().lock(),
    }
}

impl<W: Write> Out<W> {
    /// One line for a person. Line breaks and controls inside it are shown, not obeyed.
    pub fn line(&mut self, s: impl AsRef<str>) -> io::Result<()> {
        self.w.write_all(text::one_line(s.as_ref()).as_bytes())?;
        self.w.write_all(b"\n")
    }

    /// Several lines for a person (a report, a model's answer): its line breaks are kept.
    pub fn block(&mut self, s: impl AsRef<str>) -> io::Result<()> {
        self.w.write_all(text::block(s.as_ref()).as_bytes())?;
        self.w.write_all(b"\n")
    }

    /// An empty line.
    pub fn blank(&mut self) -> io::Result<()> {
        self.w.write_all(b"\n")
    }

    /// One JSON value on one line.
    pub fn json(&mut self, v: &serde_json::Value) -> io::Result<()> {
        self.w.write_all(json(v).as_bytes())?;
        self.w.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// `writeln!(out, ...)` on an [`Out`] is rendered as a block (line breaks kept, controls shown):
/// for code that formats several lines at once. Never for JSON (see [`Out::json`]).
impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w
            .write_all(text::block(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// `say!(out, "fmt", args...)`: `out.line(format!(...))`.
#[macro_export]
macro_rules! say {
    ($out:expr) => { $out.blank() };
    ($out:expr, $($arg:tt)*) => { $out.line(format!($($arg)*)) };
}

/// serde_json's compact output, except that the characters a terminal would act on and serde
/// leaves raw (DEL, C1 controls, bidi and other invisible format characters) are written as
/// `\uXXXX`: the same JSON value, byte for byte safe to print.
struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if text::is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the Basic Multilingual Plane: one \u escape.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// A JSON value on one line, safe to print (see [`TerminalSafeJson`]).
pub fn json(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, TerminalSafeJson);
    // Writing a Value into a Vec cannot fail.
    let _ = v.serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

/// A column of a [`Table`].
#[derive(Clone, Copy)]
pub struct Col {
    pub head: &'static str,
    /// The widest the column may grow, in terminal columns (cells beyond it are cut with `…`).
    pub max: usize,
    /// Right-aligned (numbers).
    pub right: bool,
}

/// A left-aligned column up to `max` wide.
pub const fn col(head: &'static str, max: usize) -> Col {
    Col {
        head,
        max,
        right: false,
    }
}

/// A right-aligned column up to `max` wide.
pub const fn num(head: &'static str, max: usize) -> Col {
    Col {
        head,
        max,
        right: true,
    }
}

/// Rows of cells printed in aligned columns, two spaces apart; the last column is not padded.
/// Cells are recorded strings or not: each is made safe and measured in terminal columns.
pub struct Table {
    cols: Vec<Col>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(cols: &[Col]) -> Table {
        Table {
            cols: cols.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Column widths: the widest cell or heading, within each column's `max`.
    fn widths(&self) -> Vec<usize> {
        self.cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|s| text::width(s))
                    .chain([c.head.len()])
                    .max()
                    .unwrap_or(0)
                    .min(c.max)
            })
            .collect()
    }

    /// The heading and the rows, one string per line.
    pub fn lines(&self) -> Vec<String> {
        let widths = self.widths();
        let heads: Vec<String> = self.cols.iter().map(|c| c.head.to_owned()).collect();
        std::iter::once(&heads)
            .chain(&self.rows)
            .map(|cells| row(&self.cols, &widths, cells))
            .collect()
    }

    pub fn print<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for l in self.lines() {
            out.line(l.trim_end())?;
        }
        Ok(())
    }
}

/// One row in columns of the given widths (the last cell only cut at its column's `max`).
pub fn row(cols: &[Col], widths: &[usize], cells: &[String]) -> String {
    let mut line = String::new();
    for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
        let cell = cells.get(i).map_or("", String::as_str);
        if i > 0 {
            line.push_str("  ");
        }
        if i + 1 == cols.len() {
            line.push_str(&text::fit(cell, c.max));
        } else {
            line.push_str(&text::pad(cell, *w, c.right));
        }
    }
    line
}

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
    // By characters: an id is recorded as the client sent it and need not be ASCII.
    match id.char_indices().nth(8) {
        Some((i, _)) => &id[..i],
        None => id,
    }
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
    fn json_stays_exact_but_carries_no_raw_terminal_controls() {
        let v = serde_json::json!({"path": "a\u{1b}]52;c;x\u{7}\u{9b}\u{202e}\u{7f}é漢\n"});
        let line = json(&v);
        assert_eq!(
            line,
            r#"{"path":"a\u001b]52;c;x\u0007\u009b\u202e\u007fé漢\n"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn lines_for_people_are_one_line_each() {
        let mut out = Out { w: Vec::new() };
        out.line("a\nb\x1b[2J").unwrap();
        out.block("c\r\nd\u{202e}").unwrap();
        let text = String::from_utf8(out.w).unwrap();
        assert_eq!(text, "a⏎b\\x1b[2J\nc\nd\\u{202e}\n");
    }

    #[test]
    fn tables_align_by_terminal_columns() {
        let mut t = Table::new(&[col("NAME", 6), num("N", 5), col("PATH", 12)]);
        t.row(vec!["漢字".into(), "7".into(), "/tmp/a".into()]);
        t.row(vec![
            "abcdefghij".into(),
            "1234".into(),
            "/a/very/long/path".into(),
        ]);
        assert_eq!(
            t.lines(),
            vec![
                "NAME       N  PATH",
                "漢字       7  /tmp/a",
                "abcde…  1234  /a/very/lon…",
            ]
        );
    }

    #[test]
    fn short_ids_cut_on_characters() {
        assert_eq!(short("27bffab0-1234"), "27bffab0");
        assert_eq!(short("ééééééééé"), "éééééééé");
        assert_eq!(short("abc"), "abc");
    }

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
