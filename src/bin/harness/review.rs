//! `harness review`: Gemini reviews the session's change (what `/review` runs, and what the Stop
//! gate tells the model to run); `--waive` sets the open findings aside. `harness reviews`: the
//! reviews so far.
//!
//! The review runs in this process and waits for its verdict (bounded by review.timeout_secs per
//! reviewer run): the model runs it through its Bash tool and acts on what it prints.

use std::io::Write;

use agent_harness::error::Error;
use agent_harness::review::{self, Request};
use agent_harness::store::reviews::{self, Review};
use agent_harness::time::now_ms;

use crate::{CliError, CliResult, Exit, config, db_path, fmt, open_store};

#[derive(clap::Args)]
pub struct Args {
    /// Limit the review to these paths (git pathspecs).
    paths: Vec<String>,
    /// The Claude Code session whose change it is; default $CLAUDE_SESSION_ID (or
    /// $CLAUDE_CODE_SESSION_ID). Required: without one, nothing is reviewed (exit 2).
    #[arg(long)]
    session: Option<String>,
    /// Diff the working tree against this git ref instead of HEAD.
    #[arg(long)]
    base: Option<String>,
    /// The acceptance criteria (default: the session's last accepted plan, else its first
    /// prompts).
    #[arg(long, conflicts_with = "criteria_file")]
    criteria: Option<String>,
    /// Read the acceptance criteria from a file.
    #[arg(long)]
    criteria_file: Option<std::path::PathBuf>,
    /// Set the session's open review aside (the user's way out of a REJECT), with a reason.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "REASON")]
    waive: Option<String>,
    /// Run the request that /review recorded for the session (its criteria).
    #[arg(long)]
    pending: bool,
    /// Print the review as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ReviewsArgs {
    #[command(subcommand)]
    command: Option<ReviewsCommand>,
    /// How many reviews to list.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// One JSON object per review.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum ReviewsCommand {
    /// Everything stored about one review.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

/// How long /review's recorded request stays available to `--pending`.
const PENDING_FRESH_MS: i64 = 10 * 60 * 1000;

fn session_from_env() -> Option<String> {
    ["CLAUDE_SESSION_ID", "CLAUDE_CODE_SESSION_ID"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
}

/// A session id that is set (a slash command's unexpanded `${...}` is not).
fn usable(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty() && !s.starts_with("${"))
}

pub fn run(args: Args) -> CliResult {
    let config = config()?;
    let db = db_path(&config)?;
    let mut store = open_store()?;
    let session = usable(args.session.clone()).or_else(|| usable(session_from_env()));

    if let Some(reason) = &args.waive {
        return waive(&mut store, session, reason.trim());
    }

    let mut review_id = None;
    let mut criteria = args.criteria.clone();
    if let Some(file) = &args.criteria_file {
        criteria = Some(
            agent_harness::config::read_regular_file(file, 256 * 1024)
                .map_err(|e| CliError::Message(format!("{}: {e}", file.display())))?,
        );
    }
    if args.pending {
        let Some(s) = &session else {
            return say(
                "agent-harness: /review could not tell which session asked (no --session and no \
                 CLAUDE_SESSION_ID), so it has nothing to review.",
            );
        };
        let taken = reviews::take_request(store.reader()?, s, now_ms() - PENDING_FRESH_MS)?;
        match taken {
            Some((id, c)) => {
                review_id = Some(id);
                criteria = criteria.or((!c.trim().is_empty()).then_some(c));
            }
            None => {
                return say(
                    "agent-harness: no /review request is waiting for this session (the hook \
                     that records it did not run: check `harness doctor`).",
                );
            }
        }
    }
    // Without a session there is nothing to gate, no edits to show outside git, and the stored
    // review would belong to no one: refused before anything is stored.
    if session.is_none() {
        eprintln!(
            "harness: which session? pass --session ID (Claude Code sets $CLAUDE_CODE_SESSION_ID)"
        );
        return Ok(Exit::Usage);
    }
    let req = Request {
        session_id: session,
        cwd: std::env::current_dir()?,
        base: args.base.clone(),
        criteria,
        paths: args.paths.clone(),
        review_id,
        trigger: if args.pending { "command" } else { "cli" },
    };
    let r = review::run(&db, &config, &req)?;
    let mut out = crate::fmt::out();
    if args.json {
        out.json(&json(&r))?;
    } else {
        writeln!(out, "{}", review::report(&r, config.review.max_rounds))?;
    }
    Ok(Exit::Ok)
}

fn say(text: &str) -> CliResult {
    writeln!(crate::fmt::out(), "{text}")?;
    Ok(Exit::Ok)
}

fn waive(
    store: &mut agent_harness::store::Store,
    session: Option<String>,
    reason: &str,
) -> CliResult {
    let db = store.path().to_path_buf();
    // By hand, outside the session: the one open review, if there is exactly one.
    let session = match session {
        Some(s) => s,
        None => {
            let open = reviews::open_reviews(store.reader()?)?;
            match open.as_slice() {
                [one] => one.session_id.clone(),
                [] => return Err("no review is open, so there is nothing to waive".into()),
                many => {
                    let list: Vec<String> = many
                        .iter()
                        .map(|r| format!("{} (review {})", r.session_id, r.id))
                        .collect();
                    return Err(CliError::Message(format!(
                        "{} sessions have an open review; name one with --session: {}",
                        many.len(),
                        list.join(", ")
                    )));
                }
            }
        }
    };
    let reason = (!reason.is_empty()).then_some(reason);
    let waived = store.write(|tx| {
        reviews::waive(tx, &session, reason, now_ms())
            .map_err(|e| Error::db("waive a review in", &db, e))
    })?;
    match waived {
        Some(id) => say(&format!(
            "agent-harness: review {id} is waived{}; the session's turn may end.",
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        )),
        None => Err(CliError::Message(format!(
            "session {session} has no open review to waive"
        ))),
    }
}

fn json(r: &Review) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "session_id": r.session_id, "thread": r.thread, "status": r.status,
        "trigger": r.trigger, "created": fmt::rfc3339(r.created_ms),
        "finished": r.finished_ms.map(fmt::rfc3339), "base": r.base, "criteria": r.criteria,
        "criteria_from": r.criteria_from, "files": r.files, "left_out": r.left_out,
        "summary": r.summary, "findings": r.findings, "error": r.error, "run_ids": r.run_ids,
        "blocks": r.blocks, "handed_off": r.handed_off_ms.map(fmt::rfc3339),
        "waive_reason": r.waive_reason, "note": r.note,
    })
}

/// Recorded text for a terminal: control characters (escapes a file name or answer may carry)
/// shown as `?`, newlines and tabs kept.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// `status` column for people: the verdict in capitals.
pub fn status_word(r: &Review) -> String {
    match r.status.as_str() {
        "approve" | "reject" => r.status.to_uppercase(),
        s => s.to_owned(),
    }
}

pub fn reviews(args: ReviewsArgs) -> CliResult {
    let config = config()?;
    let mut store = open_store()?;
    let conn = store.reader()?;
    let mut out = crate::fmt::out();
    if let Some(ReviewsCommand::Show { id, json: j }) = args.command {
        let Some(r) = reviews::get(conn, id)? else {
            return Err(CliError::Message(format!(
                "no review {id} (see `harness reviews`)"
            )));
        };
        if j || args.json {
            out.json(&json(&r))?;
            return Ok(Exit::Ok);
        }
        writeln!(
            out,
            "{}",
            clean(&review::report(&r, config.review.max_rounds))
        )?;
        writeln!(out)?;
        writeln!(out, "session: {}", clean(&r.session_id))?;
        writeln!(
            out,
            "blocks: {} (thread {}){}",
            r.blocks,
            r.thread,
            if r.handed_off_ms.is_some() {
                ", handed to the user"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "criteria ({}): {}",
            r.criteria_from.as_deref().unwrap_or("-"),
            clean(r.criteria.as_deref().unwrap_or("-"))
        )?;
        writeln!(out, "files: {}", clean(&r.files.join(", ")))?;
        if let Some(l) = &r.left_out {
            writeln!(out, "left out: {}", clean(l))?;
        }
        if let Some(w) = &r.waive_reason {
            writeln!(out, "waived: {}", clean(w))?;
        }
        if !r.run_ids.is_empty() {
            writeln!(out, "gemini runs: {}", r.run_ids.join(", "))?;
        }
        return Ok(Exit::Ok);
    }
    let rows = reviews::recent(conn, None, args.limit)?;
    if args.json {
        for r in &rows {
            out.json(&json(r))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        writeln!(
            out,
            "No reviews yet. /review [criteria] in Claude Code, or harness review --session ID."
        )?;
        return Ok(Exit::Ok);
    }
    let now = now_ms();
    writeln!(
        out,
        "{:>5}  {:<11}  {:<8}  {:<9}  {:>6}  {:>8}  SUMMARY",
        "ID", "STATUS", "SESSION", "WHEN", "BLOCKS", "FINDINGS"
    )?;
    for r in &rows {
        let text = r.summary.as_deref().or(r.error.as_deref()).unwrap_or("");
        writeln!(
            out,
            "{:>5}  {:<11}  {:<8}  {:<9}  {:>6}  {:>8}  {}",
            r.id,
            status_word(r),
            clean(r.session_id.get(..8).unwrap_or(&r.session_id)),
            fmt::ago(now, r.created_ms),
            r.blocks,
            r.findings.len(),
            clean(&agent_harness::text::clip(text, 60))
        )?;
    }
    Ok(Exit::Ok)
}
