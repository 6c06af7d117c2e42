//! Text for people: recorded strings made safe to print on a terminal, measured and clipped in
//! terminal columns; and one-line clips of longer text for a model's context.
//!
//! Everything the `harness` CLI prints for a person goes through [`one_line`] or [`block`]: a file
//! name, prompt, command or error chosen by a model can carry terminal escapes (OSC 52 writes the
//! clipboard, OSC 0 sets the title, CSI clears the screen) or bidi overrides that make text read
//! backwards. Those are shown escaped, visibly and inertly: C0 controls and DEL as `\x1b`, C1
//! controls and invisible format characters as `\u{9b}` / `\u{202e}`. A backslash is left as it
//! is, so an escape cannot be told from the same text typed literally; that is cosmetic, never
//! unsafe. JSON output does not come here: its escaping is exact (see the CLI's `fmt::json`).
//!
//! Must not depend on a terminal being present; widths are an approximation of `wcwidth` good
//! for the scripts that file names and messages use (CJK and emoji wide, combining marks zero).

use std::fmt::Write as _;

/// `s` on one line (runs of whitespace made one space), cut to `n` characters with `…`.
/// For text bound for a model (briefs), not for a terminal: it does not escape controls.
pub fn clip(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What a line break looks like inside a one-line field.
pub const NEWLINE_MARK: char = '⏎';

/// Characters a terminal acts on or that change how text around them reads, besides the C0 and
/// C1 controls: bidi embeddings, overrides, isolates and marks; line and paragraph separators;
/// zero-width space, word joiner and invisible operators; the byte order mark; interlinear
/// annotation marks; the soft hyphen.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{200B}'
        | '\u{200E}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Whether a character is shown escaped wherever it appears (in one-line fields and in blocks).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// How one character is shown: itself, or its visible escape.
enum Piece {
    Char(char),
    Escape(String),
}

fn escape(c: char) -> String {
    let mut s = String::new();
    if (c as u32) < 0x80 {
        match c {
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\n' => s.push_str("\\n"),
            _ => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
        }
    } else {
        let _ = write!(s, "\\u{{{:x}}}", c as u32);
    }
    s
}

/// The pieces of `s` shown on one line: line breaks as [`NEWLINE_MARK`] (`\r\n` as one), every
/// other unsafe character escaped.
fn one_line_pieces(s: &str) -> impl Iterator<Item = Piece> + '_ {
    let mut chars = s.chars().peekable();
    std::iter::from_fn(move || {
        let c = chars.next()?;
        Some(match c {
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                Piece::Char(NEWLINE_MARK)
            }
            '\n' => Piece::Char(NEWLINE_MARK),
            c if is_unsafe(c) => Piece::Escape(escape(c)),
            c => Piece::Char(c),
        })
    })
}

/// A recorded string made safe to print as one line of a terminal: nothing in it can move the
/// cursor, write the clipboard, set the title or reorder text; line breaks show as `⏎`, tabs as
/// `\t`, every other control and invisible format character as its escape.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for p in one_line_pieces(s) {
        match p {
            Piece::Char(c) => out.push(c),
            Piece::Escape(e) => out.push_str(&e),
        }
    }
    out
}

/// How many columns a tab takes in a [`block`].
const TAB_STOP: usize = 4;

/// Recorded multi-line text (a model's answer, an error with a stack) made safe to print: line
/// breaks are kept (`\r\n` becomes `\n`), tabs become spaces to the next stop of four, and every
/// other control and invisible format character is escaped, a lone `\r` included (it would let a
/// line overwrite itself).
pub fn block(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut column = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                out.push('\n');
                column = 0;
            }
            '\t' => {
                let n = TAB_STOP - column % TAB_STOP;
                out.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            c if is_unsafe(c) => {
                let e = escape(c);
                column += e.len();
                out.push_str(&e);
            }
            c => {
                out.push(c);
                column += char_width(c);
            }
        }
    }
    out
}

/// `s` as one safe line ([`one_line`]) of at most `cols` terminal columns, cut with `…` when
/// longer. Never cuts inside a character or inside an escape.
pub fn fit(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return one_line(s);
    }
    let Some(room) = cols.checked_sub(1) else {
        return String::new();
    };
    let mut out = String::new();
    let mut used = 0;
    for p in one_line_pieces(s) {
        let (w, shown) = match p {
            Piece::Char(c) => (char_width(c), c.to_string()),
            Piece::Escape(e) => (e.len(), e),
        };
        if used + w > room {
            break;
        }
        used += w;
        out.push_str(&shown);
    }
    out.push('…');
    out
}

/// `s` made safe and fitted to exactly `cols` columns: cut with `…` or padded with spaces on the
/// right (`right`: on the left, for numbers).
pub fn pad(s: &str, cols: usize, right: bool) -> String {
    let fitted = fit(s, cols);
    let fill = " ".repeat(cols.saturating_sub(width(&fitted)));
    if right {
        fill + &fitted
    } else {
        fitted + &fill
    }
}

/// The columns `s` takes on a terminal once made safe: escapes count as the characters they are
/// shown as.
pub fn width(s: &str) -> usize {
    one_line_pieces(s)
        .map(|p| match p {
            Piece::Char(c) => char_width(c),
            Piece::Escape(e) => e.len(),
        })
        .sum()
}

/// The columns one printable character takes: 0 for combining marks and joiners, 2 for East Asian
/// wide and fullwidth characters and emoji, else 1. Unsafe characters are never measured here
/// (they are shown as their escape).
pub fn char_width(c: char) -> usize {
    let u = c as u32;
    if u < 0x300 {
        return 1;
    }
    const ZERO: &[(u32, u32)] = &[
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0591, 0x05BD),
        (0x05BF, 0x05C7),
        (0x0610, 0x061A),
        (0x064B, 0x065F),
        (0x0670, 0x0670),
        (0x06D6, 0x06ED),
        (0x0900, 0x0903),
        (0x093A, 0x094F),
        (0x0E31, 0x0E31),
        (0x0E34, 0x0E3A),
        (0x0E47, 0x0E4E),
        (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF),
        (0x200C, 0x200D),
        (0x20D0, 0x20FF),
        (0xFE00, 0xFE0F),
        (0xFE20, 0xFE2F),
        (0xE0100, 0xE01EF),
    ];
    const WIDE: &[(u32, u32)] = &[
        (0x1100, 0x115F),
        (0x231A, 0x231B),
        (0x2329, 0x232A),
        (0x23E9, 0x23EC),
        (0x23F0, 0x23F0),
        (0x23F3, 0x23F3),
        (0x25FD, 0x25FE),
        (0x2614, 0x2615),
        (0x2648, 0x2653),
        (0x267F, 0x267F),
        (0x2693, 0x2693),
        (0x26A1, 0x26A1),
        (0x26AA, 0x26AB),
        (0x26BD, 0x26BE),
        (0x26C4, 0x26C5),
        (0x26CE, 0x26CE),
        (0x26D4, 0x26D4),
        (0x26EA, 0x26EA),
        (0x26F2, 0x26F5),
        (0x26FA, 0x26FD),
        (0x2705, 0x2705),
        (0x270A, 0x270B),
        (0x2728, 0x2728),
        (0x274C, 0x274C),
        (0x274E, 0x274E),
        (0x2753, 0x2757),
        (0x2795, 0x2797),
        (0x27B0, 0x27B0),
        (0x27BF, 0x27BF),
        (0x2B1B, 0x2B1C),
        (0x2B50, 0x2B55),
        (0x2E80, 0x303E),
        (0x3041, 0x33FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xA000, 0xA4CF),
        (0xA960, 0xA97F),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE10, 0xFE19),
        (0xFE30, 0xFE6F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x16FE0, 0x16FE4),
        (0x17000, 0x18AFF),
        (0x1B000, 0x1B2FF),
        (0x1F004, 0x1F004),
        (0x1F0CF, 0x1F0CF),
        (0x1F18E, 0x1F18E),
        (0x1F191, 0x1F19A),
        (0x1F200, 0x1F251),
        (0x1F300, 0x1F64F),
        (0x1F680, 0x1F6FF),
        (0x1F7E0, 0x1F7EB),
        (0x1F900, 0x1F9FF),
        (0x1FA70, 0x1FAFF),
        (0x20000, 0x2FFFD),
        (0x30000, 0x3FFFD),
    ];
    let within = |table: &[(u32, u32)]| {
        table
            .binary_search_by(|&(lo, hi)| {
                if hi < u {
                    std::cmp::Ordering::Less
                } else if lo > u {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    };
    if within(ZERO) {
        0
    } else if within(WIDE) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clips_on_one_line() {
        assert_eq!(clip("a\n  b\tc", 10), "a b c");
        assert_eq!(clip("héllo wörld", 5), "héllo…");
        assert_eq!(clip("", 3), "");
    }

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        // OSC 52 (clipboard), OSC 0 (title), CSI clear screen, a C1 CSI, DEL.
        assert_eq!(
            one_line("a\x1b]52;c;ZWNobw==\x07b"),
            "a\\x1b]52;c;ZWNobw==\\x07b"
        );
        assert_eq!(one_line("\x1b]0;pwned\x1b\\"), "\\x1b]0;pwned\\x1b\\");
        assert_eq!(one_line("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
        assert_eq!(one_line("x\u{9b}2Jy\u{7f}"), "x\\u{9b}2Jy\\x7f");
        assert_eq!(one_line("nul\0"), "nul\\x00");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_escaped() {
        assert_eq!(one_line("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(one_line("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
        assert_eq!(one_line("a\u{200f}b\u{feff}"), "a\\u{200f}b\\u{feff}");
    }

    #[test]
    fn one_line_fields_mark_line_breaks() {
        assert_eq!(one_line("a\nb\r\nc\rd\te"), "a⏎b⏎c\\rd\\te");
        assert_eq!(one_line("a\u{2028}b"), "a\\u{2028}b");
        // Ordinary text is left alone, backslashes and all.
        assert_eq!(
            one_line("src/main.rs é 漢字 \\x1b"),
            "src/main.rs é 漢字 \\x1b"
        );
    }

    #[test]
    fn blocks_keep_lines_and_escape_the_rest() {
        assert_eq!(block("a\r\nb\n\tc"), "a\nb\n    c");
        assert_eq!(block("ab\tc"), "ab  c");
        assert_eq!(block("ok\rfake\x1b[1A"), "ok\\rfake\\x1b[1A");
    }

    #[test]
    fn widths_count_terminal_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("漢字"), 4);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(width("🦀"), 2);
        assert_eq!(width("\x1b"), 4);
        assert_eq!(width("a\nb"), 3);
    }

    #[test]
    fn fit_cuts_on_whole_characters_and_escapes() {
        assert_eq!(fit("hello world", 20), "hello world");
        assert_eq!(fit("hello world", 5), "hell…");
        assert_eq!(fit("漢字漢字", 5), "漢字…");
        assert_eq!(fit("漢字漢字", 4), "漢…");
        assert_eq!(fit("ab\x1bcd", 6), "ab…");
        assert_eq!(fit("ab\x1bcd", 7), "ab\\x1b…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 1), "…");
        assert_eq!(fit("abcd", 0), "");
        assert_eq!(pad("ab", 4, false), "ab  ");
        assert_eq!(pad("42", 4, true), "  42");
        assert_eq!(pad("漢字漢", 5, false), "漢字…");
    }

    /// A terminal-facing string must carry no C0 control but the line break (blocks only), no
    /// DEL, no C1 control and no bidi or other invisible format character.
    fn assert_terminal_safe(s: &str, newlines: bool) {
        for c in s.chars() {
            assert!(
                !(is_unsafe(c) && !(newlines && c == '\n')),
                "{c:?} reached the output in {s:?}"
            );
        }
    }

    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            prop::sample::select(vec![
                "\u{202a}",
                "\u{202b}",
                "\u{202c}",
                "\u{202d}",
                "\u{202e}",
                "\u{2066}",
                "\u{2067}",
                "\u{2068}",
                "\u{2069}",
                "\x1b]52;c;",
                "\x1b[2J",
                "\r\n",
                "漢",
                "e\u{301}",
                "🦀",
                "\\",
            ])
            .prop_map(String::from),
            "[a-z/._ ]{0,4}",
        ];
        prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn rendered_text_is_always_terminal_safe(s in hostile(), cols in 0usize..40) {
            assert_terminal_safe(&one_line(&s), false);
            assert_terminal_safe(&block(&s), true);
            let fitted = fit(&s, cols);
            assert_terminal_safe(&fitted, false);
            prop_assert!(width(&fitted) <= cols, "{fitted:?} wider than {cols}");
            let padded = pad(&s, cols, false);
            prop_assert_eq!(width(&padded), cols);
        }

        #[test]
        fn rendering_is_idempotent_and_fit_keeps_what_fits(s in hostile(), cols in 0usize..40) {
            let once = one_line(&s);
            prop_assert_eq!(&one_line(&once), &once);
            let fitted = fit(&s, cols);
            if width(&s) <= cols {
                prop_assert_eq!(&fitted, &once);
            } else {
                // A prefix of the full rendering, then the ellipsis.
                let kept = fitted.strip_suffix('…').unwrap_or(&fitted);
                prop_assert!(once.starts_with(kept), "{:?} is not a prefix of {:?}", kept, once);
            }
        }
    }
}
