//! Delegation advice: whether to tell Claude, in context, that Gemini should take this prompt,
//! and why. Pure: (what the classifier saw, both providers' headroom, how past advice went, the
//! config) -> [`Advice`]. The store loads the state and keeps the decision (`store::routes`);
//! the classifier lives in `crate::route`.
//!
//! The score is the classifier's probability that the task suits Gemini, moved by a few
//! explained factors; the note is given when it reaches the bar (`route.threshold`):
//! - size: a pasted input of over 32 KB (about 8k tokens) adds 0.1, since it fills Claude's
//!   context; a codebase-wide task in a project of over 2,000 tracked files adds 0.05, and one in
//!   a project of under 50 takes 0.05 (Claude reads that in a few calls);
//! - quota: past `quota.warn_pct` of Claude's tightest window the bar drops, linearly, by up to
//!   0.3 at 100%; Claude rate-limited means Gemini is the only affordable choice: every scored
//!   prompt is advised. Gemini out (or its day used up) means no advice; past its warn share the
//!   bar rises by 0.1;
//! - history: after 2 or more followed pieces of advice of this type, the share that succeeded
//!   moves the score by up to ±0.1; after 5 or more given and under a quarter followed, the bar
//!   rises by 0.1 (the person prefers to keep this kind of work on Claude).
//!
//! Config can switch it off, prefer a provider per type, and name words or paths that always
//! keep a prompt on Claude.

use std::collections::BTreeMap;

use crate::route::prices::{self, Tokens};
use crate::route::{Features, Scores, TaskType};

/// `"route": {...}` settings the policy reads (see `crate::config::RouteConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings<'a> {
    pub threshold: f64,
    /// Per task type: `gemini`, `claude` or `auto`.
    pub prefer: &'a BTreeMap<String, String>,
    /// Words or paths (case-insensitive substrings) that keep a prompt on Claude.
    pub keep_on_claude: &'a [String],
    /// `quota.warn_pct`.
    pub warn_pct: f64,
}

/// Both providers' headroom, as the store knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Headroom {
    /// Claude's tightest window, percent used.
    pub claude_used_pct: Option<f64>,
    /// Claude answered with a rate limit, until then.
    pub claude_out_until_ms: Option<i64>,
    /// Gemini's day, percent of the configured requests used.
    pub gemini_used_pct: Option<f64>,
    /// Gemini answered with a quota error, until then.
    pub gemini_out_until_ms: Option<i64>,
}

/// How advice of one task type went before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Past {
    /// Times the note was given.
    pub advised: u32,
    /// Times a delegation run followed it.
    pub followed: u32,
    /// Of those runs, how many succeeded.
    pub succeeded: u32,
}

/// What the policy is asked about.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub prompt: &'a str,
    pub features: &'a Features,
    pub scores: &'a Scores,
    /// Tracked files in the project (from the git index), if known.
    pub project_files: Option<u64>,
    pub headroom: Headroom,
    /// History of the type Gemini would be handed (see [`Advice::task_type`]).
    pub past: Past,
}

/// One provider's side of the decision.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Side {
    /// Tokens the task would take to read and answer.
    pub est_tokens: u64,
    /// Percent of the tightest window left, if known.
    pub headroom_pct: Option<f64>,
    /// How well the task's type suits the provider (the classifier's probability).
    pub type_match: f64,
    /// List-price cost of `est_tokens`, USD (see `route::prices`).
    pub cost_usd: f64,
    /// Share of past followed advice that went well (Gemini only), if any.
    pub past_success: Option<f64>,
}

/// Which provider the decision picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Claude,
    Gemini,
}

impl Pick {
    pub fn as_str(self) -> &'static str {
        match self {
            Pick::Claude => "claude",
            Pick::Gemini => "gemini",
        }
    }
}

/// The decision about one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The task, one line, for the store and the note.
    pub task: String,
    pub task_type: TaskType,
    /// `small`, `medium` or `large`, from the estimated tokens.
    pub complexity: &'static str,
    /// The classifier's probability moved by the factors.
    pub score: f64,
    /// What the score had to reach.
    pub bar: f64,
    pub selected: Pick,
    /// Why, for people: the top factors with their values.
    pub reason: String,
    pub claude: Side,
    pub gemini: Side,
    /// The two or three lines for the context, when Gemini is selected.
    pub note: Option<String>,
}

/// Output tokens a turn is assumed to write, for the cost estimate.
const ASSUMED_OUTPUT: u64 = 2_000;
/// Tokens read per tracked file by a codebase-wide task.
const TOKENS_PER_FILE: u64 = 400;
/// The most a codebase-wide read is estimated at.
const MAX_TREE_TOKENS: u64 = 2_000_000;

/// The task as one line of at most 160 characters, as typed but for control characters.
pub fn task_line(features: &Features) -> String {
    let line = features
        .instruction
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // The words as typed (the shell form of the note quotes them, see `advise`); only control
    // characters go, so that the note stays two or three lines.
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = clean.chars().take(160).collect();
    if clean.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// Decides about one prompt.
pub fn advise(input: &Input<'_>, settings: &Settings<'_>, now_ms: i64) -> Advice {
    let f = input.features;
    let p_gemini = input.scores.gemini() as f64;
    let gemini_type = input.scores.top_gemini();
    let top = input.scores.top();
    let mut factors: Vec<(f64, String)> = Vec::new();
    let looks = if p_gemini >= 0.5 { gemini_type } else { top };
    factors.push((
        p_gemini.max(1.0 - p_gemini),
        format!(
            "looks like {} (Gemini fit {:.2})",
            looks.describe(),
            p_gemini
        ),
    ));

    let mut score = p_gemini;
    let mut bar = settings.threshold;

    // Size.
    if f.pasted_chars > 32 * 1024 {
        score += 0.1;
        factors.push((
            0.1,
            format!("{} KB pasted ({})", f.pasted_chars / 1024, f.paste.as_str()),
        ));
    } else if f.pasted_chars > 2_000 {
        factors.push((
            0.0,
            format!("{} KB pasted ({})", f.pasted_chars / 1024, f.paste.as_str()),
        ));
    }
    if gemini_type == TaskType::Codebase
        && let Some(files) = input.project_files
    {
        if files > 2_000 {
            score += 0.05;
            factors.push((0.05, format!("{files} tracked files")));
        } else if files < 50 {
            score -= 0.05;
            factors.push((0.05, format!("only {files} tracked files")));
        } else {
            factors.push((0.0, format!("{files} tracked files")));
        }
    }

    // Quota.
    let h = input.headroom;
    let claude_out = h.claude_out_until_ms.is_some_and(|u| u > now_ms);
    let gemini_out = h.gemini_out_until_ms.is_some_and(|u| u > now_ms)
        || h.gemini_used_pct.is_some_and(|p| p >= 100.0);
    if let Some(used) = h.claude_used_pct
        && used >= settings.warn_pct
        && settings.warn_pct < 100.0
    {
        let drop = ((used - settings.warn_pct) / (100.0 - settings.warn_pct)).clamp(0.0, 1.0) * 0.3;
        bar -= drop;
        factors.push((
            drop + 0.2,
            format!("Claude {used:.0}% used (bar -{drop:.2})"),
        ));
    }
    if let Some(used) = h.gemini_used_pct
        && used >= settings.warn_pct
        && !gemini_out
    {
        bar += 0.1;
        factors.push((0.1, format!("Gemini {used:.0}% of its day used")));
    }

    // History.
    let past = input.past;
    let past_success = (past.followed > 0).then(|| past.succeeded as f64 / past.followed as f64);
    if past.followed >= 2
        && let Some(s) = past_success
    {
        let adj = (s - 0.5) * 0.2;
        score += adj;
        factors.push((
            adj.abs(),
            format!(
                "{} of {} past runs of this type went well",
                past.succeeded, past.followed
            ),
        ));
    }
    if past.advised >= 5 && (past.followed as f64) < past.advised as f64 * 0.25 {
        bar += 0.1;
        factors.push((
            0.1,
            format!(
                "advice of this type followed {} of {} times",
                past.followed, past.advised
            ),
        ));
    }

    // Tokens and costs.
    let prompt_tokens = (f.total_chars as u64 / 4).max(1);
    let tree = match (gemini_type, input.project_files) {
        (TaskType::Codebase, Some(n)) => (n * TOKENS_PER_FILE).min(MAX_TREE_TOKENS),
        _ => 0,
    };
    let est_tokens = prompt_tokens + tree;
    let complexity = match est_tokens {
        0..8_000 => "small",
        8_000..64_000 => "medium",
        _ => "large",
    };
    let tokens = Tokens {
        input: est_tokens,
        output: ASSUMED_OUTPUT,
        ..Tokens::default()
    };
    let claude = Side {
        est_tokens,
        headroom_pct: h.claude_used_pct.map(|u| (100.0 - u).max(0.0)),
        type_match: 1.0 - p_gemini,
        cost_usd: prices::claude_cost(None, tokens),
        past_success: None,
    };
    let gemini = Side {
        est_tokens,
        headroom_pct: h.gemini_used_pct.map(|u| (100.0 - u).max(0.0)),
        type_match: p_gemini,
        cost_usd: prices::gemini_cost(tokens),
        past_success,
    };

    // The decision, strongest reasons first.
    let lower = input.prompt.to_lowercase();
    let keep = settings
        .keep_on_claude
        .iter()
        .find(|w| !w.is_empty() && lower.contains(&w.to_lowercase()));
    let pref_of = |t: TaskType| settings.prefer.get(t.as_str()).map(String::as_str);
    let (selected, why) = if let Some(w) = keep {
        (
            Pick::Claude,
            format!("the prompt names {w:?}, which route.keep_on_claude keeps on Claude"),
        )
    } else if gemini_out {
        (Pick::Claude, "Gemini is out of quota".to_string())
    } else if claude_out {
        factors.push((1.0, "Claude is rate-limited".into()));
        (
            Pick::Gemini,
            "Claude is rate-limited: Gemini is the only affordable choice".to_string(),
        )
    } else if pref_of(gemini_type) == Some("claude") || pref_of(top) == Some("claude") {
        (
            Pick::Claude,
            format!("route.prefer keeps {} on Claude", top.as_str()),
        )
    } else if pref_of(gemini_type) == Some("gemini") && p_gemini >= 0.35 {
        factors.push((
            0.9,
            format!("route.prefer sends {} to Gemini", gemini_type.as_str()),
        ));
        (
            Pick::Gemini,
            format!("route.prefer sends {} to Gemini", gemini_type.as_str()),
        )
    } else if score >= bar {
        (
            Pick::Gemini,
            format!("score {score:.2} reaches the bar {bar:.2}"),
        )
    } else {
        (
            Pick::Claude,
            format!("score {score:.2} is under the bar {bar:.2}"),
        )
    };
    let task_type = if selected == Pick::Gemini {
        gemini_type
    } else {
        top
    };
    factors.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top_factors: Vec<&str> = factors.iter().take(3).map(|(_, s)| s.as_str()).collect();
    let reason = format!("{why}; {}", top_factors.join(", "));
    let task = task_line(f);
    let note = (selected == Pick::Gemini).then(|| {
        // For the model's Bash tool: one POSIX word, whatever the task holds.
        let quoted = crate::shell::quote(&task);
        let saving = if claude.cost_usd > gemini.cost_usd {
            format!(", about ${:.2} on Gemini against ${:.2} on Claude", gemini.cost_usd, claude.cost_usd)
        } else {
            String::new()
        };
        format!(
            "agent-harness route: hand this to Gemini: {} ({}; {}).\n\
             Why: {}{saving}.\n\
             How: the user can type `/delegate-gemini {task}`; you can run `harness delegate {quoted}` \
             with Bash and work from its answer. Keep it here if it needs edits Gemini should not make.",
            gemini_type.describe(),
            gemini_type.gemini_strength(),
            why,
            top_factors.join(", "),
        )
    });
    Advice {
        task,
        task_type,
        complexity,
        score,
        bar,
        selected,
        reason,
        claude,
        gemini,
        note,
    }
}

/// The most that history ([`Past`]) moves a prompt's score and bar apart or together: the
/// success adjustment (at most 0.1 either way) plus the bar raised for ignored advice (0.1).
pub const HISTORY_REACH: f64 = 0.2;

/// Whether the history could change `neutral`, the advice given with no history: only when its
/// score is within [`HISTORY_REACH`] of its bar. Elsewhere every history gives the same pick, so
/// the hook reads none (the store's query is a fifth of the advice's cost).
pub fn history_matters(neutral: &Advice) -> bool {
    (neutral.score - neutral.bar).abs() <= HISTORY_REACH + 1e-9
}

/// True when a prompt was typed by a person and is worth scoring: not a `<task-notification>`
/// after a background agent, not a slash command (its expansion is the client's, and
/// `/delegate-gemini` already is the delegation), not empty, and not from a `source` other than
/// the user when the client names one.
pub fn is_typed(prompt: &str, source: Option<&str>) -> bool {
    let p = prompt.trim_start();
    !p.is_empty()
        && !p.starts_with("<task-notification>")
        && !p.starts_with('/')
        && source.is_none_or(|s| s.is_empty() || s.eq_ignore_ascii_case("user"))
}
