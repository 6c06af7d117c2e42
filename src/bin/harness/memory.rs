//! `harness memory`: what the harness remembers across compaction, sessions and providers (turn
//! summaries, snapshots, notes, Gemini runs): add a note, search, list, forget.

use std::path::{Path, PathBuf};

use agent_harness::error::Error;
use agent_harness::hook::now_ms;
use agent_harness::memory::{self, Item};
use agent_harness::store::memory::{self as store, Filter};

use crate::{CliError, CliResult, Exit, fmt, open_store};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Remember a note for later sessions of this project (Claude's and Gemini's alike).
    Add {
        /// The note. Secrets are redacted before it is stored.
        text: Vec<String>,
        /// The session it belongs to; default $CLAUDE_CODE_SESSION_ID (set in Claude Code's Bash
        /// tool), else none.
        #[arg(long)]
        session: Option<String>,
        /// The project it belongs to; default the one the current directory is in.
        #[arg(long)]
        project: Option<PathBuf>,
    },
    /// Search notes, turn summaries, snapshots and runs, best match first.
    Search {
        /// Words to look for (stemmed: "locking" finds "locks"; a word also matches as a prefix).
        query: Vec<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// One JSON object per match.
        #[arg(long)]
        json: bool,
    },
    /// List what is remembered, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Only this kind: note, turn, snapshot, run.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// One JSON object per item.
        #[arg(long)]
        json: bool,
    },
    /// Forget one item (its id, from `list` or `search`), or all of a session's.
    Forget {
        id: Option<i64>,
        /// Forget everything of this session (a whole id or a unique prefix).
        #[arg(long, conflicts_with = "id")]
        session: Option<String>,
    },
}

#[derive(clap::Args)]
struct FilterArgs {
    /// Only this project (default: the one the current directory is in, when given bare).
    #[arg(long, num_args = 0..=1, default_missing_value = ".")]
    project: Option<PathBuf>,
    /// Only this session (a whole id or a prefix).
    #[arg(long)]
    session: Option<String>,
    /// Only this agent: claude, gemini or user.
    #[arg(long)]
    agent: Option<String>,
}

/// The project key of a directory, as the hooks store it: its project root, else itself.
fn project_key(dir: &Path) -> CliResult<String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        CliError::Message(format!("cannot read the directory {}: {e}", dir.display()))
    })?;
    let root = agent_harness::paths::project_root(&dir).unwrap_or(dir);
    Ok(root.to_string_lossy().into_owned())
}

fn json(i: &Item, score: Option<f64>) -> serde_json::Value {
    let mut v = serde_json::to_value(i).unwrap_or_default();
    v["created"] = fmt::rfc3339(i.created_ms).into();
    if let Some(s) = score {
        v["score"] = serde_json::json!((-s * 1000.0).round() / 1000.0);
    }
    v
}

fn print(items: &[(Item, Option<f64>)], as_json: bool, empty: &str) -> CliResult {
    let mut out = fmt::out();
    if as_json {
        for (i, s) in items {
            out.json(&json(i, *s))?;
        }
        return Ok(Exit::Ok);
    }
    if items.is_empty() {
        out.line(empty)?;
        return Ok(Exit::Ok);
    }
    let now = now_ms();
    for (i, _) in items {
        let who = match &i.session_id {
            Some(s) => format!("{} {}", i.agent, fmt::short(s)),
            None => i.agent.clone(),
        };
        out.line(format!(
            "#{} {} {} ({}) {}",
            i.id,
            i.kind,
            who,
            memory::ago(now, i.created_ms),
            fmt::path(&i.project)
        ))?;
        out.line(format!("    {}", i.text))?;
    }
    Ok(Exit::Ok)
}

pub fn run(args: Args) -> CliResult {
    let mut store_handle = open_store()?;
    let db = store_handle.path().to_path_buf();
    match args.command {
        Command::Add {
            text,
            session,
            project,
        } => {
            let text = memory::clean(&text.join(" "), memory::NOTE_CHARS);
            if text.is_empty() {
                return Err(CliError::Message(
                    "give the note's text: harness memory add \"...\"".into(),
                ));
            }
            let session = session.or_else(|| {
                std::env::var("CLAUDE_CODE_SESSION_ID")
                    .ok()
                    .filter(|s| !s.is_empty())
            });
            let project = project_key(&project.unwrap_or_else(|| PathBuf::from(".")))?;
            let agent: String = match &session {
                Some(s) => store_handle
                    .reader()?
                    .query_row(
                        "SELECT agent FROM sessions WHERE session_id = ?1",
                        [s],
                        |r| r.get(0),
                    )
                    .unwrap_or_else(|_| "user".into()),
                None => "user".into(),
            };
            let id = store_handle.write(|tx| {
                store::add(
                    tx,
                    "note",
                    session.as_deref(),
                    &agent,
                    &project,
                    now_ms(),
                    &text,
                )
                .map_err(|e| Error::db("add a note to", &db, e))
            })?;
            fmt::out().line(format!("remembered #{id}"))?;
            Ok(Exit::Ok)
        }
        Command::Search {
            query,
            filter,
            limit,
            json,
        } => {
            let words = query.join(" ");
            if memory::fts_query(&words, 16, true).is_none() {
                return Err(CliError::Message(
                    "give words to search for: harness memory search WORDS".into(),
                ));
            }
            let project = filter.project.as_deref().map(project_key).transpose()?;
            let f = Filter {
                project: project.as_deref(),
                session: filter.session.as_deref(),
                agent: filter.agent.as_deref(),
                kind: None,
            };
            let found = store::search(store_handle.reader()?, &words, &f, limit)?;
            let found: Vec<(Item, Option<f64>)> =
                found.into_iter().map(|(i, s)| (i, Some(s))).collect();
            print(&found, json, "nothing remembered matches")
        }
        Command::List {
            filter,
            kind,
            limit,
            json,
        } => {
            let project = filter.project.as_deref().map(project_key).transpose()?;
            let f = Filter {
                project: project.as_deref(),
                session: filter.session.as_deref(),
                agent: filter.agent.as_deref(),
                kind: kind.as_deref(),
            };
            let items: Vec<(Item, Option<f64>)> = store::list(store_handle.reader()?, &f, limit)?
                .into_iter()
                .map(|i| (i, None))
                .collect();
            print(&items, json, "nothing remembered yet")
        }
        Command::Forget { id, session } => {
            let n = match (id, session) {
                (Some(id), None) => {
                    let gone = store_handle.write(|tx| {
                        store::forget(tx, id).map_err(|e| Error::db("forget in", &db, e))
                    })?;
                    if !gone {
                        return Err(CliError::Message(format!(
                            "nothing remembered has id {id} (see `harness memory list`)"
                        )));
                    }
                    1
                }
                (None, Some(prefix)) => {
                    let session = crate::sessions::resolve_one(store_handle.reader()?, &prefix)?;
                    store_handle.write(|tx| {
                        store::forget_session(tx, &session)
                            .map_err(|e| Error::db("forget in", &db, e))
                    })?
                }
                _ => {
                    return Err(CliError::Message(
                        "say what to forget: harness memory forget ID, or --session ID".into(),
                    ));
                }
            };
            fmt::out().line(format!("forgot {n} item{}", if n == 1 { "" } else { "s" }))?;
            Ok(Exit::Ok)
        }
    }
}
