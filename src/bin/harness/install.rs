//! `harness install` / `harness uninstall`: the file side of `agent_harness::install` (which
//! settings file, where the binaries are, backup, dry run, atomic write, slash commands).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use agent_harness::install::{
    self, COMMANDS, Client, HOOK_BINARIES, STATUSLINE_BINARY, StatusLine,
};
use agent_harness::paths;
use serde_json::Value;

use crate::{CliError, CliResult, Exit, fmt};

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Install into the user's settings (~/.claude/settings.json: every project). This is the
    /// default; the flag says it explicitly.
    #[arg(long)]
    user: bool,
    /// Install into one project's settings instead: DIR, or without DIR the git root above the
    /// current directory (refused outside a git repository).
    #[arg(long, conflicts_with = "user", num_args = 0..=1, default_missing_value = "", value_name = "DIR")]
    project: Option<String>,
    /// Write the hook commands as absolute paths into this directory. Default: bare names when the
    /// harness-* binaries are on PATH, else the directory this `harness` binary is in.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Print the change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Install into Gemini CLI's settings (~/.gemini/settings.json, or a project's
    /// .gemini/settings.json with --project) instead of Claude Code's, so that Gemini CLI
    /// sessions are recorded too.
    #[arg(long)]
    gemini: bool,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    /// Uninstall from the user's settings (the default).
    #[arg(long)]
    user: bool,
    /// Uninstall from one project's settings instead (DIR, or the git root above the current
    /// directory).
    #[arg(long, conflicts_with = "user", num_args = 0..=1, default_missing_value = "", value_name = "DIR")]
    project: Option<String>,
    /// Print the change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Uninstall from Gemini CLI's settings instead of Claude Code's.
    #[arg(long)]
    gemini: bool,
}

/// True when `dir` is agent-harness's own source tree (its Cargo.toml names the package).
fn is_harness_source(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| {
        t.lines()
            .any(|l| l.replace(' ', "") == "name=\"agent-harness\"")
    })
}

/// Where Claude Code keeps user settings: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn claude_user_dir() -> CliResult<PathBuf> {
    paths::claude_config_dir()
        .ok_or_else(|| CliError::Message("HOME is not set; pass --project DIR instead".into()))
}

/// Where Gemini CLI keeps user settings: `$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`.
fn gemini_user_dir() -> CliResult<PathBuf> {
    paths::gemini_home()
        .map(|h| h.join(".gemini"))
        .ok_or_else(|| CliError::Message("HOME is not set; pass --project DIR instead".into()))
}

/// The client's settings directory to work on (`.claude` or `.gemini`): the user's unless a
/// project is asked for. `--project` without a directory means the git root above the current
/// directory; outside a git repository, or in agent-harness's own checkout, that is refused (a
/// project named explicitly is taken as it is).
fn client_dir(client: Client, project: Option<String>) -> CliResult<PathBuf> {
    let Some(project) = project else {
        return match client {
            Client::Claude => claude_user_dir(),
            Client::Gemini => gemini_user_dir(),
        };
    };
    let project = if project.is_empty() {
        let cwd = std::env::current_dir()?;
        let Some(root) = paths::project_root(&cwd) else {
            return Err(CliError::Message(format!(
                "{} is not inside a git repository, so it is not clear which project you mean: \
                 pass --project DIR for a project, or --user (the default) for all your sessions",
                cwd.display()
            )));
        };
        if is_harness_source(&root) {
            return Err(CliError::Message(format!(
                "{} is agent-harness's own source tree; to record every session, run \
                 `harness install` (user-wide); to record this checkout's sessions anyway, name it: \
                 --project {}",
                root.display(),
                root.display()
            )));
        }
        root
    } else {
        let project = PathBuf::from(project);
        if !project.is_dir() {
            return Err(CliError::Message(format!(
                "--project {}: no such directory",
                project.display()
            )));
        }
        project
    };
    let project = paths::canonical(None, &project.to_string_lossy());
    Ok(project.join(match client {
        Client::Claude => ".claude",
        Client::Gemini => ".gemini",
    }))
}

/// True when `dir` is the client's user-wide settings directory (never removed, even empty).
fn user_dir_of(client: Client, dir: &Path) -> bool {
    let user = match client {
        Client::Claude => claude_user_dir(),
        Client::Gemini => gemini_user_dir(),
    };
    user.is_ok_and(|u| u == dir)
}

/// The change to a settings file, for `--dry-run`.
fn print_diff(out: &mut impl Write, path: &Path, old: Option<&str>, new: &str) -> CliResult<()> {
    writeln!(out, "--- {}", path.display())?;
    write!(out, "{}", install::line_diff(old.unwrap_or(""), new))?;
    Ok(())
}

/// The slash commands a client gets (Claude Code's only; the status line is Claude Code's too).
fn commands_of(client: Client) -> &'static [(&'static str, &'static str)] {
    match client {
        Client::Claude => COMMANDS,
        Client::Gemini => &[],
    }
}

fn client_of(gemini: bool) -> Client {
    if gemini {
        Client::Gemini
    } else {
        Client::Claude
    }
}

/// Reads a settings file: (its text, its value). A missing file is `{}`.
fn read_settings(path: &Path) -> CliResult<(Option<String>, Value)> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok((Some(text), Value::Object(Default::default()))),
        Ok(text) => {
            let value = serde_json::from_str(&text).map_err(|e| {
                CliError::Message(format!(
                    "cannot read {}: {e}; fix the JSON (or move the file away) and run this again",
                    path.display()
                ))
            })?;
            Ok((Some(text), value))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((None, Value::Object(Default::default())))
        }
        Err(e) => Err(CliError::Message(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn pretty(value: &Value) -> CliResult<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Replaces `path` with `text` atomically, keeping its permissions; backs the old file up first.
/// Returns the backup's path.
fn write_settings(path: &Path, old: Option<&str>, text: &str) -> CliResult<Option<PathBuf>> {
    let dir = path.parent().expect("a settings path has a directory");
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Message(format!("cannot create {}: {e}", dir.display())))?;
    let mut backup = None;
    if let Some(old) = old {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let base = format!("{}.agent-harness-backup-{stamp}", path.display());
        // Never overwrite an earlier backup: it may hold the only copy of the user's original.
        let b = (0..)
            .map(|n| match n {
                0 => PathBuf::from(&base),
                n => PathBuf::from(format!("{base}-{n}")),
            })
            .find(|b| !b.exists())
            .expect("some backup name is free");
        std::fs::write(&b, old)
            .map_err(|e| CliError::Message(format!("cannot write backup {}: {e}", b.display())))?;
        backup = Some(b);
    }
    let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    std::fs::write(&tmp, text)
        .map_err(|e| CliError::Message(format!("cannot write {}: {e}", tmp.display())))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(
            &tmp,
            std::fs::Permissions::from_mode(meta.permissions().mode()),
        );
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| CliError::Message(format!("cannot replace {}: {e}", path.display())))?;
    Ok(backup)
}

/// How hook commands name the binaries: bare names (found on PATH) or absolute paths.
fn command_style(bin_dir: Option<PathBuf>) -> CliResult<(Option<PathBuf>, String)> {
    let missing_in = |dir: &Path| -> Vec<&str> {
        HOOK_BINARIES
            .iter()
            .copied()
            .chain(std::iter::once(STATUSLINE_BINARY))
            .filter(|b| !dir.join(b).is_file())
            .collect()
    };
    if let Some(dir) = bin_dir {
        let dir = paths::canonical(None, &dir.to_string_lossy());
        let missing = missing_in(&dir);
        if !missing.is_empty() {
            return Err(CliError::Message(format!(
                "--bin-dir {} lacks {}; pass the directory that holds the harness-* binaries \
                 (cargo build --release puts them in target/release)",
                dir.display(),
                missing.join(", ")
            )));
        }
        let note = format!(
            "hook commands run {}/harness-*",
            fmt::path(&dir.to_string_lossy())
        );
        return Ok((Some(dir), note));
    }
    if HOOK_BINARIES
        .iter()
        .chain(std::iter::once(&STATUSLINE_BINARY))
        .all(|b| which::which(b).is_ok())
    {
        return Ok((None, "hook commands run harness-* from PATH".into()));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    match exe_dir {
        Some(dir) if missing_in(&dir).is_empty() => {
            let note = format!(
                "the harness-* binaries are not on PATH, so hook and slash commands run \
                 {dir}/harness-* and {dir}/harness (add {dir} to PATH to use bare names)",
                dir = fmt::path(&dir.to_string_lossy())
            );
            Ok((Some(dir), note))
        }
        _ => Err(CliError::Message(
            "cannot find the harness-* hook binaries on PATH or beside this harness binary; \
             run `cargo install --path .` in the agent-harness checkout, or pass --bin-dir"
                .into(),
        )),
    }
}

pub fn run_install(args: InstallArgs) -> CliResult {
    let client = client_of(args.gemini);
    let user_wide = args.project.is_none();
    let claude = client_dir(client, args.project)?;
    let settings_path = claude.join("settings.json");
    let (old_text, mut settings) = read_settings(&settings_path)?;
    let (bin_dir, command_note) = command_style(args.bin_dir)?;
    let mut ours = install::client_hooks(client, &|name| match (&bin_dir, client) {
        (Some(dir), Client::Claude) => dir.join(name).to_string_lossy().into_owned(),
        (Some(dir), Client::Gemini) => {
            agent_harness::shell::quote(&dir.join(name).to_string_lossy())
        }
        (None, _) => name.to_owned(),
    });
    // A config that cannot be read is reported by the hooks themselves; install goes on without.
    let fail_closed = crate::config().is_ok_and(|c| c.locks.fail_closed);
    install::set_fail_closed(client, &mut ours, fail_closed);
    let commands = commands_of(client);
    // The slash commands run `harness` the way the hooks run theirs: by the same absolute path
    // when the binaries are not on PATH.
    let harness = match &bin_dir {
        Some(dir) if dir.join("harness").is_file() => {
            agent_harness::shell::quote(&dir.join("harness").to_string_lossy())
        }
        _ => "harness".to_owned(),
    };
    let statusline = match client {
        Client::Claude => {
            let command = match &bin_dir {
                Some(dir) => {
                    agent_harness::shell::quote(&dir.join(STATUSLINE_BINARY).to_string_lossy())
                }
                None => STATUSLINE_BINARY.to_owned(),
            };
            Some(
                install::merge_statusline(&mut settings, &command)
                    .map_err(|e| CliError::Message(format!("{}: {e}", settings_path.display())))?,
            )
        }
        Client::Gemini => None,
    };
    let changed = install::merge(&mut settings, &ours).map_err(|e| {
        CliError::Message(format!(
            "{}: {e}; fix that key by hand and run this again",
            settings_path.display()
        ))
    })?;
    let new_text = pretty(&settings)?;
    let mut out = crate::fmt::out();
    let unchanged = old_text.as_deref() == Some(new_text.as_str());

    if unchanged {
        writeln!(
            out,
            "{} already carries the harness hooks.",
            settings_path.display()
        )?;
    }
    if args.dry_run {
        if !unchanged {
            print_diff(&mut out, &settings_path, old_text.as_deref(), &new_text)?;
        }
        for (name, _) in commands {
            writeln!(
                out,
                "would copy commands/{name} to {}",
                claude.join("commands").join(name).display()
            )?;
        }
        writeln!(out, "(dry run: nothing written)")?;
        return Ok(Exit::Ok);
    }

    if !unchanged {
        let backup = write_settings(&settings_path, old_text.as_deref(), &new_text)?;
        writeln!(
            out,
            "Added agent-harness hooks for {} events to {}",
            changed.len(),
            settings_path.display()
        )?;
        if let Some(b) = backup {
            writeln!(out, "  backup of the previous file: {}", b.display())?;
        }
    }
    writeln!(out, "  {command_note}")?;
    match &statusline {
        Some(StatusLine::Added) => writeln!(
            out,
            "  status line: harness-statusline (quota, locks, context)"
        )?,
        Some(StatusLine::KeptUsers(cmd)) => writeln!(
            out,
            "  kept your status line ({cmd}); to record official quota figures, run \
             harness-statusline from it (it reads the same JSON on stdin)"
        )?,
        _ => {}
    }
    for (name, body) in commands {
        let target = claude.join("commands").join(name);
        let text = install::command_file(body, &harness);
        let added = match std::fs::read_to_string(&target) {
            Ok(existing) if existing == text => continue,
            // Ours, naming `harness` another way (an earlier install from elsewhere): replaced.
            Ok(existing) if install::shipped_command_program(body, &existing).is_some() => {
                "updated"
            }
            Ok(_) => {
                writeln!(
                    out,
                    "  kept your {} (it differs from the harness's; delete it and re-run to update)",
                    target.display()
                )?;
                continue;
            }
            Err(_) => "added",
        };
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        std::fs::write(&target, &text)?;
        writeln!(
            out,
            "  {added} /{} ({})",
            name.trim_end_matches(".md"),
            target.display()
        )?;
    }

    // Create the store now, so `harness status` works before the first session.
    let config = crate::config()?;
    let db = crate::db_path(&config)?;
    let mut store = agent_harness::store::Store::open(
        &db,
        std::time::Duration::from_millis(config.store.busy_timeout_ms),
    )?;
    store.reader()?;
    writeln!(out, "  store: {}", fmt::path(&db.to_string_lossy()))?;
    writeln!(out)?;
    writeln!(
        out,
        "Use {} as usual{}. Watch with `harness events --follow`; check with `harness doctor`.",
        match client {
            Client::Claude => "claude",
            Client::Gemini => "gemini",
        },
        if user_wide {
            " (every project: the hooks are in your user settings)".to_owned()
        } else {
            format!(" in {}", claude.parent().unwrap_or(&claude).display())
        }
    )?;
    Ok(Exit::Ok)
}

pub fn run_uninstall(args: UninstallArgs) -> CliResult {
    let client = client_of(args.gemini);
    let claude = client_dir(client, args.project)?;
    let settings_path = claude.join("settings.json");
    let (old_text, mut settings) = read_settings(&settings_path)?;
    let events = install::unmerge(&mut settings).map_err(|e| {
        CliError::Message(format!(
            "{}: {e}; fix that key by hand",
            settings_path.display()
        ))
    })?;
    let statusline = install::unmerge_statusline(&mut settings);
    let removed = events + usize::from(statusline);
    let what = match (events, statusline) {
        (n, true) => format!("the harness hooks for {n} events and its status line"),
        (n, false) => format!("the harness hooks for {n} events"),
    };
    let empty = settings.as_object().is_some_and(|o| o.is_empty());
    let new_text = pretty(&settings)?;
    let mut out = crate::fmt::out();
    if args.dry_run {
        if removed == 0 {
            writeln!(out, "{} holds no harness hooks.", settings_path.display())?;
        } else {
            print_diff(&mut out, &settings_path, old_text.as_deref(), &new_text)?;
        }
        writeln!(out, "(dry run: nothing written)")?;
        return Ok(Exit::Ok);
    }
    if removed == 0 {
        writeln!(out, "{} holds no harness hooks.", settings_path.display())?;
    } else if empty {
        // It held only what the harness put there: nothing of the user's to back up.
        std::fs::remove_file(&settings_path)?;
        writeln!(
            out,
            "Removed {what}; {} held nothing else and was deleted",
            settings_path.display()
        )?;
    } else {
        let backup = write_settings(&settings_path, old_text.as_deref(), &new_text)?;
        writeln!(out, "Removed {what} from {}", settings_path.display())?;
        if let Some(b) = backup {
            writeln!(out, "  backup: {}", b.display())?;
        }
    }
    for (name, body) in commands_of(client) {
        let target = claude.join("commands").join(name);
        match std::fs::read_to_string(&target) {
            Ok(existing) if install::shipped_command_program(body, &existing).is_some() => {
                std::fs::remove_file(&target)?;
                writeln!(out, "  removed {}", target.display())?;
            }
            Ok(_) => writeln!(out, "  kept {} (you changed it)", target.display())?,
            Err(_) => {}
        }
    }
    // The commands directory install created, now empty; a directory holding anything stays.
    let _ = std::fs::remove_dir(claude.join("commands"));
    if claude.read_dir().is_ok_and(|mut d| d.next().is_none()) && !user_dir_of(client, &claude) {
        let _ = std::fs::remove_dir(&claude);
    }
    writeln!(
        out,
        "The store and its history are kept; delete it by hand if you want it gone."
    )?;
    Ok(Exit::Ok)
}
