//! Redaction: secrets are removed from every string before anything is stored.
//!
//! Owns the list of what counts as a secret: Anthropic, Google, GitHub and AWS keys and tokens,
//! bearer tokens, PEM private keys, and the values of env-style assignments (`NAME=value`,
//! `name: "value"`) and JSON object members whose names end in KEY, TOKEN, SECRET, PASSWORD or
//! PASSWD (any case). It errs towards redacting: a false positive costs a word in a stored
//! payload, a miss leaks a credential into a file that outlives the session. Hand-written scanning
//! (no regex engine) keeps it to one pass over each string. Must not do IO.

use std::borrow::Cow;

use serde_json::Value;

/// What replaces the value of a secret-named assignment or member.
pub const REDACTED: &str = "[redacted]";

const SECRET_SUFFIXES: [&str; 5] = ["key", "token", "secret", "password", "passwd"];

/// True when a variable or member name announces a secret value.
pub fn is_secret_name(name: &str) -> bool {
    name.len() >= 3
        && name.is_ascii()
        && SECRET_SUFFIXES
            .iter()
            .any(|s| name.len() >= s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s))
}

/// Redacts every string in a JSON value, in place; also replaces string values of members with
/// secret names. Returns how many secrets were removed.
pub fn redact_value(value: &mut Value) -> usize {
    match value {
        Value::String(s) => match redact_str(s) {
            Cow::Borrowed(_) => 0,
            Cow::Owned(new) => {
                *s = new;
                1
            }
        },
        Value::Array(items) => items.iter_mut().map(redact_value).sum(),
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| match v {
                Value::String(s) if is_secret_name(k) && !s.is_empty() && s != REDACTED => {
                    *s = REDACTED.to_owned();
                    1
                }
                _ => redact_value(v),
            })
            .sum(),
        _ => 0,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn run_len(bytes: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    bytes[from..].iter().take_while(|&&b| ok(b)).count()
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Redacts the secrets in one string. Borrows when there is nothing to redact.
pub fn redact_str(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes before `copied` are already in `out` (or unchanged, when `out` is None).
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !is_word(bytes[i - 1]);
        let found = if at_word_start {
            token_at(bytes, i).or_else(|| assignment_at(bytes, i))
        } else {
            None
        };
        match found {
            Some((start, end, replacement)) => {
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(&text[copied..start]);
                buf.push_str(replacement);
                copied = end;
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
    }
}

/// A known token format starting at `i`: (start, end, replacement) of the part to replace.
fn token_at(bytes: &[u8], i: usize) -> Option<(usize, usize, &'static str)> {
    let rest = &bytes[i..];
    let starts = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()] == *p;
    let whole = |prefix: usize, body: usize, min: usize, label| {
        (body >= min && !bytes.get(i + prefix + body).is_some_and(|&b| is_word(b))).then_some((
            i,
            i + prefix + body,
            label,
        ))
    };
    match rest.first()? {
        b's' if starts(b"sk-ant-") => {
            let n = run_len(bytes, i + 7, token_char);
            whole(7, n, 20, "[redacted:anthropic-key]")
        }
        b'A' if starts(b"AIza") => {
            let n = run_len(bytes, i + 4, token_char);
            whole(4, n, 35, "[redacted:google-key]")
        }
        b'A' => {
            const AWS: [&[u8]; 8] = [
                b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"ANPA", b"ANVA", b"AIPA",
            ];
            AWS.iter().find(|p| starts(p))?;
            let n = run_len(bytes, i + 4, |b| {
                b.is_ascii_uppercase() || b.is_ascii_digit()
            });
            (n == 16 && !bytes.get(i + 20).is_some_and(|&b| is_word(b))).then_some((
                i,
                i + 20,
                "[redacted:aws-key]",
            ))
        }
        b'y' if starts(b"ya29.") => {
            let n = run_len(bytes, i + 5, |b| token_char(b) || b == b'.');
            whole(5, n, 20, "[redacted:google-token]")
        }
        b'g' if starts(b"github_pat_") => {
            let n = run_len(bytes, i + 11, |b| b.is_ascii_alphanumeric() || b == b'_');
            whole(11, n, 20, "[redacted:github-token]")
        }
        b'g' if rest.len() > 4
            && rest[0..2] == *b"gh"
            && b"pousr".contains(&rest[2])
            && rest[3] == b'_' =>
        {
            let n = run_len(bytes, i + 4, |b| b.is_ascii_alphanumeric());
            whole(4, n, 30, "[redacted:github-token]")
        }
        b'B' | b'b' if rest.len() > 7 && rest[..7].eq_ignore_ascii_case(b"bearer ") => {
            let from = i + 7 + run_len(bytes, i + 7, |b| b == b' ');
            let n = run_len(bytes, from, |b| {
                b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
            });
            (n >= 8).then_some((from, from + n, REDACTED))
        }
        b'-' if starts(b"-----BEGIN ") => {
            let line_end = i + rest.iter().position(|&b| b == b'\n')?;
            if !bytes[i..line_end].ends_with(b"PRIVATE KEY-----") {
                return None;
            }
            let end_marker = b"-----END ";
            let end = (line_end..bytes.len())
                .find(|&j| bytes[j..].starts_with(end_marker))
                .unwrap_or(bytes.len());
            Some((line_end + 1, end, "[redacted:private-key]\n"))
        }
        _ => None,
    }
}

/// An env-style assignment of a secret-named variable starting at `i`, such as
/// `API_KEY=abc`, `export GITHUB_TOKEN="abc"`, `password: hunter2` or `"api_key": "abc"`.
/// Returns the span of the value.
fn assignment_at(bytes: &[u8], i: usize) -> Option<(usize, usize, &'static str)> {
    if !(bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
        return None;
    }
    let name_len = run_len(bytes, i, is_word);
    let name = std::str::from_utf8(&bytes[i..i + name_len]).ok()?;
    if !is_secret_name(name) {
        return None;
    }
    let mut j = i + name_len;
    // A quoted name: `"api_key": ...`.
    if matches!(bytes.get(j), Some(b'"' | b'\'')) {
        j += 1;
    }
    j += run_len(bytes, j, |b| b == b' ' || b == b'\t');
    match bytes.get(j) {
        Some(b'=') if bytes.get(j + 1) != Some(&b'=') => j += 1,
        Some(b':') if bytes.get(j + 1) != Some(&b':') => j += 1,
        _ => return None,
    }
    j += run_len(bytes, j, |b| b == b' ' || b == b'\t');
    match bytes.get(j)? {
        &q @ (b'"' | b'\'') => {
            let start = j + 1;
            let mut k = start;
            while k < bytes.len() && bytes[k] != q && bytes[k] != b'\n' {
                k += if bytes[k] == b'\\' && q == b'"' { 2 } else { 1 };
            }
            let end = k.min(bytes.len());
            (end > start && &bytes[start..end] != REDACTED.as_bytes())
                .then_some((start, end, REDACTED))
        }
        // A reference to another variable is not a secret.
        b'$' => None,
        _ => {
            let n = run_len(bytes, j, |b| {
                b.is_ascii_alphanumeric() || b"-._~+/=@%:!#*^".contains(&b)
            });
            // `key = compute(x)` is code, not a secret: only whole token-like values count.
            let next = bytes.get(j + n).copied();
            let ends_cleanly =
                next.is_none_or(|b| b.is_ascii_whitespace() || b";,&|)}]\"'".contains(&b));
            (n > 0 && ends_cleanly && &bytes[j..j + n] != REDACTED.as_bytes()).then_some((
                j,
                j + n,
                REDACTED,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> String {
        redact_str(s).into_owned()
    }

    #[test]
    fn known_token_formats_are_removed() {
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-_AA here",
                "key [redacted:anthropic-key] here",
            ),
            (
                "AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "[redacted:google-key]",
            ),
            (
                "tok ya29.a0AfH6SMBx-abcdefghijklmnopqrstu.vw end",
                "tok [redacted:google-token] end",
            ),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "[redacted:github-token]",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "[redacted:github-token]",
            ),
            ("id AKIAIOSFODNN7EXAMPLE.", "id [redacted:aws-key]."),
            (
                "curl -H 'Authorization: Bearer abc.def-ghi_jkl'",
                "curl -H 'Authorization: Bearer [redacted]'",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "{input}");
        }
    }

    #[test]
    fn assignments_of_secret_names_lose_their_values() {
        let cases = [
            (
                "export GEMINI_API_KEY=abc123 && run",
                "export GEMINI_API_KEY=[redacted] && run",
            ),
            ("DB_PASSWORD='p a s s' x", "DB_PASSWORD='[redacted]' x"),
            ("GITHUB_TOKEN=\"x\\\"y\"", "GITHUB_TOKEN=\"[redacted]\""),
            (
                "client_secret: s3cr3t\nnext: 1",
                "client_secret: [redacted]\nnext: 1",
            ),
            ("{\"api_key\": \"abc\"}", "{\"api_key\": \"[redacted]\"}"),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "AWS_SECRET_ACCESS_KEY=[redacted]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let cases = [
            "task-ant-abcdefghijklmnopqrstuvwxyz0123456789",
            "let key = compute(x);",
            "TOKEN=$VAULT_TOKEN",
            "if a == b { key }",
            "std::key::Key",
            "sk-ant-short",
            "tool_use_id toolu_msg_1",
            "the bearer of good news",
            "AKIA is a prefix",
            "héllo wörld ✓ KEY",
        ];
        for input in cases {
            assert!(matches!(redact_str(input), Cow::Borrowed(_)), "{input}");
        }
    }

    #[test]
    fn private_keys_lose_their_body() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(
            r(pem),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n[redacted:private-key]\n-----END OPENSSH PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn json_values_are_walked_and_secret_members_replaced() {
        let mut v = json!({
            "tool_input": {"command": "ANTHROPIC_API_KEY=sk-ant-zzzzzzzzzzzzzzzzzzzzzzzz claude",
                           "env": {"OPENAI_API_KEY": "plain", "count_token": 3}},
            "list": ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
            "tool_use_id": "toolu_1"
        });
        assert_eq!(redact_value(&mut v), 3);
        assert_eq!(
            v["tool_input"]["command"],
            "ANTHROPIC_API_KEY=[redacted] claude"
        );
        assert_eq!(v["tool_input"]["env"]["OPENAI_API_KEY"], REDACTED);
        assert_eq!(v["tool_input"]["env"]["count_token"], 3);
        assert_eq!(v["list"][0], "[redacted:github-token]");
        assert_eq!(v["tool_use_id"], "toolu_1");
        // Redacting twice changes nothing more.
        assert_eq!(redact_value(&mut v), 0);
    }
}
