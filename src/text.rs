//! Text for people: one-line clips of longer text.

/// `s` on one line (runs of whitespace made one space), cut to `n` characters with `…`.
pub fn clip(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clips_on_one_line() {
        assert_eq!(super::clip("a\n  b\tc", 10), "a b c");
        assert_eq!(super::clip("héllo wörld", 5), "héllo…");
        assert_eq!(super::clip("", 3), "");
    }
}
