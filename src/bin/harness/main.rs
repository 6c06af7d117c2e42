//! `harness`: the admin CLI. Reads the store, installs the hooks, checks the set-up.
//!
//! The only binary that uses clap. Errors end here: one line `harness: <what failed and the fix>`
//! on stderr and exit 1; usage errors exit 2 (clap's own); a closed stdout (`| head`) is success.

mod fmt;

mod dashboard;
mod delegate;
mod doctor;
mod events;
mod export;
mod install;
mod locks;
mod memory;
mod problems;
mod progress;
mod quota;
mod review;
mod routes;
mod sessions;
mod status;
mod usage;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent_harness::config::Config;
use agent_harness::store::Store;
use clap::{Parser, Subcommand};

/// The CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Something failed, or `doctor` found a problem.
    Failure = 1,
    /// The command cannot tell what it was asked (clap's own usage errors exit 2 too).
    Usage = 2,
}

/// The CLI's error: a message for the user that already says what to do, or a closed stdout.
#[derive(Debug)]
pub enum CliError {
    Message(String),
    /// The reader of stdout went away (`harness events | head`): not a failure.
    BrokenPipe,
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Message(e.to_string())
        }
    }
}

macro_rules! message_from {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Message(e.to_string())
            }
        }
    )*};
}
message_from!(
    agent_harness::error::Error,
    rusqlite::Error,
    serde_json::Error,
    String,
    &str
);

pub type CliResult<T = Exit> = Result<T, CliError>;

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "agent-harness: Claude Code and Gemini CLI as one team",
    long_about = "agent-harness records every Claude Code and Gemini CLI session in one SQLite \
                  file through hooks, and shows it back.\n\nStart with `harness install` (user-wide: \
                  every project; `--project DIR` for one), then use `claude` as always; `harness status` and `harness events \
                  --follow` show what the agents do.",
    after_help = "Store: $HARNESS_DB, else ~/.local/state/agent-harness/harness.db. \
                  Config: $HARNESS_CONFIG, else ~/.config/agent-harness/config.json."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show live sessions and recent activity.
    Status(status::Args),
    /// List recorded hook events (newest last); --follow for a live feed.
    Events(events::Args),
    /// List sessions (Claude Code sessions and Gemini CLI runs).
    Sessions(sessions::Args),
    /// Hand a task to Gemini CLI and print its answer (what /delegate-gemini runs).
    Delegate(delegate::Args),
    /// List Gemini CLI runs; `runs show ID` prints one whole.
    Runs(delegate::RunsArgs),
    /// Gemini reviews the session's change against its acceptance criteria (what /review runs);
    /// --waive sets open findings aside.
    Review(review::Args),
    /// List reviews; `reviews show ID` prints one whole.
    Reviews(review::ReviewsArgs),
    /// Both providers' quota: official figures and estimates, rate limits, thresholds.
    Quota(quota::Args),
    /// Delegation advice given at prompts: list, explain one (`routes ID`), `--stats` per type.
    Routes(routes::Args),
    /// What the harness remembers across compaction, sessions and providers: add a note,
    /// search, list, forget.
    Memory(memory::Args),
    /// The status line command for Claude Code (reads its JSON on stdin, prints one line).
    Statusline(quota::StatuslineArgs),
    /// Serve the live web page (activity, routing, rate limits, costs, reviews) on 127.0.0.1.
    Dashboard(dashboard::Args),
    /// Token usage and cost from Claude Code transcripts: daily, sessions or 5-hour blocks.
    Usage(usage::Args),
    /// List the files agents hold (file locks); `locks release` frees them.
    Locks(locks::Args),
    /// Send what the store records to an OpenTelemetry collector (`export otlp`), resumably.
    Export(export::Args),
    /// Check the set-up: store, permissions, hooks on PATH and in settings, gemini, the log.
    Doctor(doctor::Args),
    /// Add the harness's hooks to ~/.claude/settings.json (every project), or with --project DIR
    /// to one project's .claude/settings.json.
    Install(install::InstallArgs),
    /// Remove exactly what `harness install` added.
    Uninstall(install::UninstallArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status(a) => status::run(a),
        Command::Events(a) => events::run(a),
        Command::Sessions(a) => sessions::run(a),
        Command::Dashboard(a) => dashboard::run(a),
        Command::Usage(a) => usage::run(a),
        Command::Locks(a) => locks::run(a),
        Command::Quota(a) => quota::run(a),
        Command::Statusline(a) => quota::statusline(a),
        Command::Routes(a) => routes::run(a),
        Command::Memory(a) => memory::run(a),
        Command::Delegate(a) => delegate::run(a),
        Command::Runs(a) => delegate::runs(a),
        Command::Review(a) => review::run(a),
        Command::Reviews(a) => review::reviews(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Export(a) => export::run(a),
        Command::Install(a) => install::run_install(a),
        Command::Uninstall(a) => install::run_uninstall(a),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Message(msg)) => {
            // A message can quote what the user or a model gave (a session id, a path).
            eprintln!("harness: {}", agent_harness::text::one_line(&msg));
            ExitCode::from(Exit::Failure as u8)
        }
    }
}

/// The config, or a clear error naming the file and the fix.
pub fn config() -> CliResult<Config> {
    Ok(Config::load()?)
}

/// The store's path from the config and environment.
pub fn db_path(config: &Config) -> CliResult<PathBuf> {
    Ok(config.db_path()?)
}

/// Opens the store for reading. A store that does not exist yet is created empty, so a fresh
/// install shows an empty panel rather than an error.
pub fn open_store() -> CliResult<Store> {
    let config = config()?;
    let path = db_path(&config)?;
    let mut store = Store::open(&path, Duration::from_millis(config.store.busy_timeout_ms))?;
    store.reader()?;
    Ok(store)
}
