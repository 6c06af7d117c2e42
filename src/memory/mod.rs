//! Memory: what the harness hands back to a model so that it does not start cold after a
//! compaction, in a new session, or on the other provider.
//!
//! Owns the pure half: the state a hand-back is made from (built by `store::memory`), how a turn
//! summary and a snapshot are written, how a hand-back is rendered within its byte budget (most
//! relevant first, a fixed small structure, no control characters, secrets redacted), and how a
//! person's words become a safe full-text query. Must not touch the store, the clock or the
//! environment.
//!
//! Never writes Claude Code's own memory files (its auto-memory): this memory is what no single
//! client has, shared by both providers and every session.

use crate::redact;

/// The most of a prompt kept in a turn summary, in characters.
pub const PROMPT_CHARS: usize = 300;
/// The most of the model's closing message kept in a turn summary, in characters.
pub const REPLY_CHARS: usize = 400;
/// The most of a note's text kept, in characters.
pub const NOTE_CHARS: usize = 2000;
/// The most of a stored snapshot, in bytes (the hand-back is cut to its own budget).
pub const SNAPSHOT_BYTES: usize = 8 * 1024;
/// How many of a project's newest remembered items a hook ranks against a prompt.
pub const SEARCH_REACH: usize = 300;
/// Files named in one turn summary or snapshot.
pub const MAX_FILES: usize = 15;

/// One remembered thing, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Item {
    pub id: i64,
    /// `note`, `turn`, `snapshot`, `run` or `review`.
    pub kind: String,
    pub session_id: Option<String>,
    /// `claude`, `gemini` or `user`.
    pub agent: String,
    pub project: String,
    pub created_ms: i64,
    pub text: String,
}

/// Text made fit to store and hand to a model: secrets redacted, every control and invisible
/// format character gone, whitespace runs made one space, cut to `chars` characters and `…`.
pub fn clean(s: &str, chars: usize) -> String {
    // Redacting a 4 MiB message to keep 400 characters of it is wasted work: redact a prefix
    // with ample margin (a secret cut at its end lies far past what is kept).
    let redacted = redact::redact_str(crate::text::head(
        s,
        chars.saturating_mul(8).saturating_add(1024),
    ));
    let mut out = String::with_capacity(redacted.len().min(chars * 4));
    let mut count = 0;
    let mut space = false;
    let mut input = redacted.chars().peekable();
    while let Some(c) = input.next() {
        // A terminal escape goes whole, not just its ESC: `ESC [ ... final`, `ESC ] ... BEL`
        // (or `ESC \\`), CSI (U+009B) and OSC (U+009D) alike.
        let kind = match c {
            '\x1b' => input.next_if(|n| matches!(n, '[' | ']')),
            '\u{9b}' => Some('['),
            '\u{9d}' => Some(']'),
            _ => None,
        };
        match kind {
            Some('[') => {
                while input
                    .next()
                    .is_some_and(|n| !('\x40'..='\x7e').contains(&n))
                {}
            }
            Some(']') => {
                while let Some(n) = input.next() {
                    if n == '\x07'
                        || n == '\u{9c}'
                        || (n == '\x1b' && input.next_if_eq(&'\\').is_some())
                    {
                        break;
                    }
                }
            }
            _ => {}
        }
        if c.is_whitespace() || crate::text::is_unsafe(c) {
            space = !out.is_empty();
            continue;
        }
        for c in [' ', c].into_iter().skip(usize::from(!space)) {
            if count == chars {
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
        space = false;
    }
    out
}

/// The last path components of a file, for a short list (`src/store/mod.rs` stays whole under
/// the project, anything else keeps its last two parts).
pub fn short_path(path: &str, project: &str) -> String {
    if !project.is_empty()
        && let Some(rest) = path.strip_prefix(project)
        && let Some(rest) = rest.strip_prefix('/')
    {
        return rest.to_owned();
    }
    let parts: Vec<&str> = path.rsplit('/').take(2).collect();
    match parts.as_slice() {
        [name, dir] if !dir.is_empty() => format!("…/{dir}/{name}"),
        _ => path.to_owned(),
    }
}

/// What one turn did: the prompt, the files it edited, the model's closing message.
#[derive(Debug, Clone, Default)]
pub struct Turn<'a> {
    pub prompt: Option<&'a str>,
    pub files: Vec<String>,
    pub reply: Option<&'a str>,
}

/// A turn's summary as stored (and searched): `asked: … | edited: … | answered: …`. None when
/// the turn has nothing to say.
pub fn turn_text(turn: &Turn<'_>, project: &str) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(p) = turn
        .prompt
        .map(|p| clean(p, PROMPT_CHARS))
        .filter(|p| !p.is_empty())
    {
        parts.push(format!("asked: {p}"));
    }
    if !turn.files.is_empty() {
        parts.push(format!("edited: {}", file_list(&turn.files, project)));
    }
    if let Some(r) = turn
        .reply
        .map(|r| clean(r, REPLY_CHARS))
        .filter(|r| !r.is_empty())
    {
        parts.push(format!("answered: {r}"));
    }
    (!parts.is_empty()).then(|| parts.join(" | "))
}

fn file_list(files: &[String], project: &str) -> String {
    let mut list: Vec<String> = files
        .iter()
        .take(MAX_FILES)
        .map(|f| clean(&short_path(f, project), 200))
        .collect();
    if files.len() > MAX_FILES {
        list.push(format!("(+{} more)", files.len() - MAX_FILES));
    }
    list.join(", ")
}

/// A review finding still open (its review's verdict is a REJECT not yet set aside).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenFinding {
    pub review_id: i64,
    pub file: Option<String>,
    pub line: Option<i64>,
    pub severity: Option<String>,
    pub problem: String,
}

/// A Gemini run the model has not seen the end of: queued, running, or finished with the
/// answer not yet delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingRun {
    pub run_id: String,
    pub status: String,
    pub task: String,
}

/// What a session's snapshot is made of, most relevant first.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    pub agent: String,
    pub project: String,
    /// The session's first prompts (what it set out to do), oldest first.
    pub first_prompts: Vec<String>,
    /// Its latest prompt, when it is not among the first.
    pub last_prompt: Option<String>,
    /// Files it edited, most recent first (at most a bound the loader sets).
    pub files: Vec<String>,
    /// How many files it edited in all.
    pub files_total: usize,
    /// Files it holds now (file locks).
    pub claims: Vec<String>,
    pub findings: Vec<OpenFinding>,
    pub runs: Vec<PendingRun>,
    /// Notes of this session (and this project's hand-added ones), newest first.
    pub notes: Vec<String>,
    /// Its latest turn summaries, newest first.
    pub turns: Vec<String>,
}

/// A hand-back being filled within its budget: sections in order, each a heading and lines;
/// whatever does not fit is counted, not cut mid-line.
struct Render {
    out: String,
    budget: usize,
    full: bool,
    /// Whether any section was added (a title alone says nothing).
    said: bool,
}

impl Render {
    fn new(title: &str, budget: usize) -> Render {
        Render {
            out: format!("{title}\n"),
            budget,
            full: false,
            said: false,
        }
    }

    /// Adds a section: `heading` then one `- ` line per item, as many as fit. An item that does
    /// not fit whole is cut when it is the first of its section, else left out (and counted).
    fn section(&mut self, heading: &str, items: &[String]) {
        if items.is_empty() || self.full {
            return;
        }
        let head = format!("{heading}:\n");
        // Room for the heading and at least a short first line.
        if self.out.len() + head.len() + 24 > self.budget {
            self.full = true;
            return;
        }
        self.out.push_str(&head);
        self.said = true;
        for (i, item) in items.iter().enumerate() {
            let line = format!("- {item}\n");
            let left = items.len() - i - 1;
            let more = if left > 0 {
                format!("- (+{left} more)\n")
            } else {
                String::new()
            };
            if self.out.len() + line.len() + more.len() <= self.budget {
                self.out.push_str(&line);
                continue;
            }
            if i == 0 {
                let room = self.budget.saturating_sub(self.out.len() + 6 + more.len());
                self.out.push_str("- ");
                self.out.push_str(crate::text::head(item, room));
                self.out.push_str("…\n");
            }
            let left = items.len() - i - usize::from(i == 0);
            if left > 0 && self.out.len() + 16 <= self.budget {
                self.out.push_str(&format!("- (+{left} more)\n"));
            }
            self.full = true;
            return;
        }
    }

    fn finish(self) -> String {
        let mut out = self.out;
        while out.len() > self.budget {
            // Only reachable with a budget smaller than the title: cut hard.
            let keep = crate::text::head(&out, self.budget).len();
            out.truncate(keep);
        }
        out.trim_end().to_owned()
    }
}

/// Files as one comma-separated line of at most `bytes` bytes, with `(+N more)` for the rest.
fn capped_list(files: &[String], total: usize, project: &str, bytes: usize) -> String {
    let mut out = String::new();
    let total = total.max(files.len());
    for (i, f) in files.iter().enumerate() {
        let name = clean(&short_path(f, project), 200);
        let more = format!(", (+{} more)", total - i);
        let sep = if out.is_empty() { "" } else { ", " };
        if !out.is_empty() && out.len() + sep.len() + name.len() + more.len() > bytes {
            out.push_str(&more);
            return out;
        }
        out.push_str(sep);
        out.push_str(&name);
    }
    if total > files.len() {
        out.push_str(&format!(", (+{} more)", total - files.len()));
    }
    out
}

fn finding_line(f: &OpenFinding, project: &str) -> String {
    let place = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{}:{line}: ", short_path(file, project)),
        (Some(file), None) => format!("{}: ", short_path(file, project)),
        _ => String::new(),
    };
    let severity = f
        .severity
        .as_deref()
        .map_or(String::new(), |s| format!("[{s}] "));
    clean(
        &format!("{severity}{place}{} (review {})", f.problem, f.review_id),
        300,
    )
}

fn run_line(r: &PendingRun) -> String {
    clean(
        &format!(
            "{} {}: {} (`harness runs show {}`)",
            r.run_id.get(..8).unwrap_or(&r.run_id),
            r.status,
            r.task,
            r.run_id.get(..8).unwrap_or(&r.run_id)
        ),
        240,
    )
}

/// The snapshot of a session, within `budget` bytes: the task, files edited, open claims,
/// unresolved findings, pending runs, notes, and what the last turns did. None when there is
/// nothing to say.
pub fn snapshot(s: &SessionState, budget: usize) -> Option<String> {
    let mut r = Render::new(
        "agent-harness memory: where this session stood before the compaction (from the \
         harness's record). Keep a fact for later with `harness memory add \"...\"`.",
        budget,
    );
    let mut task: Vec<String> = s.first_prompts.iter().map(|p| clean(p, 240)).collect();
    if let Some(last) = &s.last_prompt {
        task.push(format!("latest: {}", clean(last, 240)));
    }
    r.section("Task (what the user asked)", &task);
    // The lists get a share of the budget each, so that findings and notes still fit.
    if !s.files.is_empty() {
        let line = capped_list(&s.files, s.files_total, &s.project, budget / 3);
        r.section("Files edited (most recent first)", &[line]);
    }
    if !s.claims.is_empty() {
        let line = capped_list(&s.claims, s.claims.len(), &s.project, budget / 8);
        r.section("Files you hold (other agents' writes are refused)", &[line]);
    }
    let findings: Vec<String> = s
        .findings
        .iter()
        .map(|f| finding_line(f, &s.project))
        .collect();
    r.section(
        "Unresolved review findings (fix, or `harness review`)",
        &findings,
    );
    let runs: Vec<String> = s.runs.iter().map(run_line).collect();
    r.section("Gemini runs not yet read", &runs);
    let notes: Vec<String> = s.notes.iter().map(|n| clean(n, 300)).collect();
    r.section("Notes", &notes);
    let turns: Vec<String> = s.turns.iter().map(|t| clean(t, 400)).collect();
    r.section("Last turns (newest first)", &turns);
    r.said.then(|| r.finish())
}

/// One earlier session of the project, for the brief.
#[derive(Debug, Clone, Default)]
pub struct PastSession {
    pub session_id: String,
    pub agent: String,
    pub last_ms: i64,
    /// Its turns in the store (at most the bound the loader reads).
    pub turns: usize,
    /// Its latest turn summary (or snapshot line).
    pub latest: String,
}

/// What a project's brief is made of.
#[derive(Debug, Clone, Default)]
pub struct ProjectState {
    pub project: String,
    pub sessions: Vec<PastSession>,
    pub findings: Vec<OpenFinding>,
    pub runs: Vec<PendingRun>,
    pub notes: Vec<String>,
    /// One line per provider whose quota is known, already worded.
    pub quota: Vec<String>,
}

/// "3 min ago", "2 h ago", "4 d ago".
pub fn ago(now_ms: i64, ts_ms: i64) -> String {
    let s = (now_ms - ts_ms).max(0) / 1000;
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn who(agent: &str) -> &'static str {
    match agent {
        "gemini" => "Gemini",
        "claude" => "Claude",
        _ => "someone",
    }
}

/// The brief for a session starting in a project, within `budget` bytes: what the last sessions
/// did (and by whom), unresolved findings, runs pending or unread, notes, quota. None when there
/// is nothing to say (quota alone is not worth a brief).
///
/// A brief is kept and handed out again until the project's memory changes, so its times are
/// absolute, and the quota says when it was read.
pub fn brief(p: &ProjectState, budget: usize, now_ms: i64) -> Option<String> {
    if p.sessions.is_empty() && p.findings.is_empty() && p.runs.is_empty() && p.notes.is_empty() {
        return None;
    }
    let mut r = Render::new(
        "agent-harness memory: what happened in this project lately (Claude Code and Gemini CLI \
         sessions share it). Add a note for later sessions with \
         `harness memory add \"...\"`; search with `harness memory search WORDS`.",
        budget,
    );
    let findings: Vec<String> = p
        .findings
        .iter()
        .map(|f| finding_line(f, &p.project))
        .collect();
    r.section("Unresolved review findings", &findings);
    let sessions: Vec<String> = p
        .sessions
        .iter()
        .map(|s| {
            clean(
                &format!(
                    "{} session {} ({}, {} turn{}): {}",
                    who(&s.agent),
                    s.session_id.get(..8).unwrap_or(&s.session_id),
                    utc(s.last_ms),
                    s.turns,
                    if s.turns == 1 { "" } else { "s" },
                    s.latest
                ),
                420,
            )
        })
        .collect();
    r.section("Recent sessions (newest first)", &sessions);
    let runs: Vec<String> = p.runs.iter().map(run_line).collect();
    r.section("Gemini runs pending or not yet read", &runs);
    let notes: Vec<String> = p.notes.iter().map(|n| clean(n, 300)).collect();
    r.section("Notes", &notes);
    r.section(&format!("Quota (as of {})", utc(now_ms)), &p.quota);
    Some(r.finish())
}

/// `2026-12-02 00:41 UTC`: a time that stays true in a brief kept for later.
pub fn utc(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// Memory found relevant to a prompt (for Gemini's BeforeAgent), within `budget` bytes.
pub fn relevant(items: &[Item], budget: usize, now_ms: i64) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut r = Render::new(
        "agent-harness memory: earlier work in this project that matches this prompt.",
        budget,
    );
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            clean(
                &format!(
                    "{} {} ({}): {}",
                    who(&i.agent),
                    i.kind,
                    ago(now_ms, i.created_ms),
                    i.text
                ),
                500,
            )
        })
        .collect();
    r.section("Matches (best first)", &lines);
    Some(r.finish())
}

/// One line per provider whose quota is known, for a brief.
pub fn quota_lines(q: &crate::quota::Quota, now_ms: i64) -> Vec<String> {
    use crate::quota::Provider;
    [Provider::Claude, Provider::Gemini]
        .into_iter()
        .filter_map(|p| {
            let pq = q.of(p);
            match (&pq.exhausted, pq.tightest()) {
                (Some(e), _) if e.until_ms > now_ms => Some(format!(
                    "{}: out of quota for {}",
                    p.name(),
                    crate::time::span(e.until_ms - now_ms)
                )),
                (_, Some(w)) => Some(format!("{}: {}", p.name(), w.describe(now_ms))),
                _ => None,
            }
        })
        .collect()
}

/// The words of a text as a hook compares them: lower case, stop words and words under three
/// letters dropped, a plural or tense ending taken off (`locks`, `locking`, `locked`: `lock`).
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.chars().count() < 3 || STOP_WORDS.contains(&w.as_str()) {
            continue;
        }
        let stem = ["ing", "ed", "es", "s"]
            .iter()
            .find_map(|suffix| w.strip_suffix(suffix).filter(|s| s.chars().count() >= 3))
            .unwrap_or(&w)
            .to_owned();
        if !out.contains(&stem) {
            out.push(stem);
        }
    }
    out
}

/// The items that match a prompt best, at most `n`: each prompt word an item shares scores by
/// how rare it is among the items (inverse document frequency); ties go to the newer item
/// (items come newest first). An item sharing no word is never returned.
pub fn rank(prompt: &str, items: Vec<Item>, n: usize) -> Vec<Item> {
    let want: Vec<String> = terms(prompt).into_iter().take(16).collect();
    if want.is_empty() || items.is_empty() {
        return Vec::new();
    }
    let has: Vec<Vec<bool>> = items
        .iter()
        .map(|i| {
            let t = terms(&i.text);
            want.iter().map(|w| t.contains(w)).collect()
        })
        .collect();
    let total = items.len() as f64;
    let idf: Vec<f64> = (0..want.len())
        .map(|k| {
            let df = has.iter().filter(|h| h[k]).count() as f64;
            (1.0 + total / (1.0 + df)).ln()
        })
        .collect();
    let mut scored: Vec<(f64, usize)> = has
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                h.iter()
                    .zip(&idf)
                    .filter(|(m, _)| **m)
                    .map(|(_, w)| w)
                    .sum(),
                i,
            )
        })
        .filter(|(score, _)| *score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let keep: Vec<usize> = scored.into_iter().take(n).map(|(_, i)| i).collect();
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    keep.into_iter().filter_map(|i| items[i].take()).collect()
}

/// Words too common to search on.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "for", "from", "how", "i", "in",
    "is", "it", "me", "my", "of", "on", "or", "please", "that", "the", "this", "to", "we", "what",
    "when", "where", "which", "why", "with", "you",
];

/// A person's words as an FTS5 query: each word quoted (nothing they type is query syntax),
/// stop words dropped, words of three letters or more also matched as prefixes when `prefix`;
/// the terms OR-ed so that the best match (most terms, rarest terms) ranks first. None when no
/// word is left. At most `max_terms` words.
pub fn fts_query(text: &str, max_terms: usize, prefix: bool) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        if STOP_WORDS.contains(&w.as_str()) || words.contains(&w) {
            continue;
        }
        words.push(w);
        if words.len() == max_terms {
            break;
        }
    }
    if words.is_empty() {
        return None;
    }
    let terms: Vec<String> = words
        .iter()
        .map(|w| {
            if prefix && w.chars().count() >= 3 {
                format!("\"{w}\" OR \"{w}\"*")
            } else {
                format!("\"{w}\"")
            }
        })
        .collect();
    Some(terms.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_controls_redacts_and_caps() {
        assert_eq!(clean("a\x1b[31mb\n\n c", 100), "a b c");
        assert_eq!(
            clean("x\x1b]52;c;ZXZpbA==\x07y \x1b]0;t\x1b\\z", 100),
            "x y z"
        );
        assert_eq!(clean("abcdef", 4), "abcd…");
        assert_eq!(clean("ab cd", 5), "ab cd");
        let s = clean(
            "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789 here",
            200,
        );
        assert!(!s.contains("abcdefghijklmnop"), "{s}");
    }

    #[test]
    fn a_turn_names_prompt_files_and_reply() {
        let t = Turn {
            prompt: Some("fix the\nparser"),
            files: vec!["/p/src/a.rs".into(), "/elsewhere/x/b.rs".into()],
            reply: Some("Done."),
        };
        assert_eq!(
            turn_text(&t, "/p").unwrap(),
            "asked: fix the parser | edited: src/a.rs, …/x/b.rs | answered: Done."
        );
        assert_eq!(turn_text(&Turn::default(), "/p"), None);
    }

    #[test]
    fn a_snapshot_keeps_within_budget_and_puts_the_task_and_files_first() {
        let s = SessionState {
            project: "/p".into(),
            first_prompts: vec!["build the parser".into()],
            files: (0..40).map(|i| format!("/p/src/f{i}.rs")).collect(),
            findings: vec![OpenFinding {
                review_id: 3,
                file: Some("/p/src/f1.rs".into()),
                line: Some(10),
                severity: Some("high".into()),
                problem: "off by one".into(),
            }],
            turns: (0..50)
                .map(|i| format!("turn {i} {}", "x".repeat(300)))
                .collect(),
            ..Default::default()
        };
        for budget in [600, 2048, 4096] {
            let text = snapshot(&s, budget).unwrap();
            assert!(text.len() <= budget, "{budget}: {}", text.len());
            assert!(text.contains("build the parser"));
            assert!(text.contains("src/f0.rs"), "{text}");
        }
        assert_eq!(snapshot(&SessionState::default(), 2048), None);
        let text = snapshot(&s, 2048).unwrap();
        assert!(text.contains("src/f1.rs:10: [high]") || text.contains("[high] src/f1.rs:10"));
        assert!(text.contains("more)"), "{text}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn an_empty_project_has_no_brief() {
        assert_eq!(brief(&ProjectState::default(), 2048, 0), None);
        let p = ProjectState {
            quota: vec!["Claude 5-hour window 40% used".into()],
            ..Default::default()
        };
        assert_eq!(brief(&p, 2048, 0), None);
    }

    #[test]
    fn a_hook_ranks_items_by_the_rare_words_they_share() {
        let item = |id: i64, text: &str| Item {
            id,
            kind: "turn".into(),
            session_id: None,
            agent: "claude".into(),
            project: "/p".into(),
            created_ms: 0,
            text: text.into(),
        };
        let items = vec![
            item(3, "asked: tidy the config loader"),
            item(
                2,
                "asked: make the exporter stream rows | edited: src/export.rs",
            ),
            item(1, "asked: the config exporter"),
        ];
        let found = rank("why does the exporter stream?", items.clone(), 2);
        assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), [2, 1]);
        assert!(rank("zebra giraffe", items.clone(), 3).is_empty());
        assert_eq!(terms("Locking the locks, locked!"), ["lock"]);
    }

    #[test]
    fn queries_are_quoted_words() {
        assert_eq!(
            fts_query("the \"DB\" OR lock*", 8, true).unwrap(),
            "\"db\" OR \"lock\" OR \"lock\"*"
        );
        assert_eq!(
            fts_query("locks, a b", 8, false).unwrap(),
            "\"locks\" OR \"b\""
        );
        assert_eq!(fts_query("the of", 8, true), None);
        assert_eq!(fts_query("", 8, true), None);
    }
}
