//! The reviewer's verdict: one strict JSON object, validated field by field.
//!
//! `{"verdict": "APPROVE" | "REJECT", "summary": "...", "findings": [{"file", "line",
//! "severity", "problem", "fix"}]}`. The only leniency is around the object: surrounding
//! whitespace and one Markdown code fence, which models add out of habit. Anything else that is
//! not exactly this shape is invalid, with a reason the repair prompt quotes back.

use serde_json::{Map, Value};

use crate::policy::review_gate::Finding;

/// A valid verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub approve: bool,
    pub summary: String,
    pub findings: Vec<Finding>,
}

/// The most findings kept from one verdict.
pub const MAX_FINDINGS: usize = 50;

/// Parses and validates a reviewer's answer.
pub fn parse(answer: &str) -> Result<Verdict, String> {
    let text = unfence(answer.trim());
    if text.is_empty() {
        return Err("the answer was empty".into());
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("the answer is not one JSON object: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("the answer is JSON but not an object".into());
    };
    only_keys(&obj, &["verdict", "summary", "findings"], "the verdict")?;
    let approve = match obj.get("verdict").and_then(Value::as_str) {
        Some("APPROVE") => true,
        Some("REJECT") => false,
        Some(other) => {
            return Err(format!(
                "\"verdict\" must be \"APPROVE\" or \"REJECT\", not {other:?}"
            ));
        }
        None => return Err("\"verdict\" is missing or not a string".into()),
    };
    let summary = text_field(&obj, "summary", "the verdict")?;
    let Some(Value::Array(items)) = obj.get("findings") else {
        return Err("\"findings\" is missing or not an array".into());
    };
    let mut findings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("findings[{i}]");
        let Value::Object(f) = item else {
            return Err(format!("{at} is not an object"));
        };
        only_keys(f, &["file", "line", "severity", "problem", "fix"], &at)?;
        let line = match f.get("line") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => return Err(format!("{at}.line must be a positive integer or null")),
            },
        };
        if findings.len() < MAX_FINDINGS {
            findings.push(Finding {
                file: text_field(f, "file", &at)?,
                line,
                severity: text_field(f, "severity", &at)?.to_lowercase(),
                problem: text_field(f, "problem", &at)?,
                fix: text_field(f, "fix", &at)?,
            });
        }
    }
    if !approve && findings.is_empty() {
        return Err("a REJECT must name at least one finding".into());
    }
    Ok(Verdict {
        approve,
        summary,
        findings,
    })
}

fn unfence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at} has a field {k:?} that is not part of the format ({})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn text_field(obj: &Map<String, Value>, key: &str, at: &str) -> Result<String, String> {
    match obj.get(key).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("{at}: \"{key}\" is missing, empty or not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REJECT: &str = r#"{"verdict": "REJECT", "summary": "Off by one.", "findings": [
        {"file": "src/a.rs", "line": 3, "severity": "Major", "problem": "Skips the last.", "fix": "Use ..="}]}"#;

    #[test]
    fn a_reject_and_an_approve_parse() {
        let v = parse(REJECT).unwrap();
        assert!(!v.approve);
        assert_eq!(v.findings[0].line, Some(3));
        assert_eq!(v.findings[0].severity, "major");
        let v = parse(r#"{"verdict":"APPROVE","summary":"Fine.","findings":[]}"#).unwrap();
        assert!(v.approve && v.findings.is_empty());
    }

    #[test]
    fn one_code_fence_is_tolerated() {
        assert!(parse(&format!("```json\n{REJECT}\n```")).is_ok());
    }

    #[test]
    fn anything_off_the_format_is_invalid_with_a_reason() {
        for (answer, says) in [
            ("", "empty"),
            ("Looks good to me!", "not one JSON object"),
            ("[1]", "not an object"),
            (
                r#"{"verdict":"LGTM","summary":"x","findings":[]}"#,
                "APPROVE",
            ),
            (r#"{"summary":"x","findings":[]}"#, "verdict"),
            (r#"{"verdict":"APPROVE","findings":[]}"#, "summary"),
            (r#"{"verdict":"APPROVE","summary":"x"}"#, "findings"),
            (
                r#"{"verdict":"REJECT","summary":"x","findings":[]}"#,
                "at least one",
            ),
            (
                r#"{"verdict":"APPROVE","summary":"x","findings":[],"score":9}"#,
                "score",
            ),
            (
                r#"{"verdict":"REJECT","summary":"x","findings":[{"file":"a","line":-1,"severity":"x","problem":"p","fix":"f"}]}"#,
                "line",
            ),
            (
                r#"{"verdict":"REJECT","summary":"x","findings":[{"file":"a","line":1,"severity":"x","problem":"p"}]}"#,
                "fix",
            ),
            (&format!("Here you go: {REJECT}"), "not one JSON object"),
        ] {
            let e = parse(answer).unwrap_err();
            assert!(e.contains(says), "{answer}: {e}");
        }
    }
}
