//! `harness doctor`: checks the set-up and says what to fix. Exits 1 when something is broken.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_harness::config::Config;
use agent_harness::install::{self, HOOK_BINARIES};
use agent_harness::store::{self, SCHEMA_VERSION, Store, spool};
use agent_harness::{log, paths};
use serde_json::Value;

use crate::{CliResult, Exit, fmt};

#[derive(clap::Args)]
pub struct Args {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    lines: Vec<(Level, String, String)>,
}

impl Report {
    fn add(&mut self, level: Level, what: &str, text: impl Into<String>) {
        self.lines.push((level, what.to_owned(), text.into()));
    }
}

pub fn run(_args: Args) -> CliResult {
    let mut r = Report { lines: Vec::new() };
    let config = check_config(&mut r);
    check_store(&mut r, &config);
    check_binaries(&mut r);
    check_settings(&mut r);
    check_gemini(&mut r, &config);
    check_trust(&mut r, &config);
    let cwd = std::env::current_dir().unwrap_or_default();
    match agent_harness::gemini::setup::lock_hooks_in(&cwd) {
        Some(f) => r.add(
            Level::Ok,
            "gem hooks",
            format!(
                "{}: harness hooks (write runs obey the locks)",
                fmt::path(&f.to_string_lossy())
            ),
        ),
        None => r.add(
            Level::Warn,
            "gem hooks",
            "no Gemini settings carry the harness hooks: Gemini sessions you start go \
             unrecorded (runs the harness starts bring their own); `harness install --gemini \
             --user` adds them",
        ),
    }

    let mut out = fmt::out();
    for (level, what, text) in &r.lines {
        let mark = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        // A logged problem or a path can carry anything: the line goes through the renderer.
        out.line(format!(
            "{mark}  {} {text}",
            agent_harness::text::pad(what, 10, false)
        ))?;
    }
    Ok(if r.lines.iter().any(|(l, _, _)| *l == Level::Fail) {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

/// The Gemini CLI delegation uses (`gemini.binary`, else PATH), and whether a run started here
/// will authenticate (Gemini's selected auth type and the environment).
fn check_gemini(r: &mut Report, config: &Config) {
    use agent_harness::gemini::{auth, runner};
    let configured = config.gemini.binary.as_deref();
    match runner::find(configured) {
        Some(p) => {
            let runnable = std::fs::metadata(&p)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            let shown = fmt::path(&p.to_string_lossy());
            match (runnable, configured.is_some()) {
                (true, true) => r.add(Level::Ok, "gemini", format!("{shown} (gemini.binary)")),
                (true, false) => r.add(Level::Ok, "gemini", shown),
                (false, _) => r.add(
                    Level::Warn,
                    "gemini",
                    format!(
                        "gemini.binary is {shown}, which is not an executable file: delegation \
                         fails until it names Gemini CLI"
                    ),
                ),
            }
        }
        None => r.add(
            Level::Warn,
            "gemini",
            "not on PATH: delegation needs Gemini CLI (npm install -g @google/gemini-cli) or \
             gemini.binary in the config",
        ),
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = paths::gemini_home();
    let (selected, problems) = auth::selected_in(&auth::settings_files(home.as_deref(), &cwd));
    let dotenv = auth::dotenv_files(home.as_deref(), &cwd);
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| auth::dotenv_value(&dotenv, k))
    };
    let from = selected
        .as_ref()
        .map(|(t, f)| (t.clone(), fmt::path(&f.to_string_lossy())));
    let verdict = auth::assess(from.as_ref().map(|(t, f)| (t.as_str(), f.as_str())), &env);
    let level = if verdict.works {
        Level::Ok
    } else {
        Level::Warn
    };
    r.add(level, "gem auth", verdict.text);
    for p in problems {
        r.add(Level::Warn, "gem auth", format!("cannot read {p}"));
    }
}

/// Whether a Gemini run started here would trust this folder, and why.
fn check_trust(r: &mut Report, config: &Config) {
    use agent_harness::gemini::trust::{self, Trust};
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let shown = |p: &Path| fmt::path(&p.to_string_lossy());
    let (level, text) = match trust::decide(
        &cwd,
        config.gemini.trust_workspace,
        trust::Sources::from_env().as_ref(),
    ) {
        Trust::Config => (
            Level::Ok,
            "runs here trust the folder (gemini.trust_workspace)".into(),
        ),
        Trust::Claude(dir) => (
            Level::Ok,
            format!(
                "runs here trust the folder (Claude Code trusts {})",
                shown(&dir)
            ),
        ),
        Trust::Gemini(rule) => (
            Level::Ok,
            format!(
                "runs here trust the folder (Gemini trusts {})",
                shown(&rule)
            ),
        ),
        Trust::GeminiDistrusts(rule) => (
            Level::Warn,
            format!(
                "Gemini distrusts {} (DO_NOT_TRUST): runs here will be refused",
                shown(&rule)
            ),
        ),
        Trust::ConfigOff => (
            Level::Ok,
            "gemini.trust_workspace is false: Gemini's own trust settings decide".into(),
        ),
        Trust::Unknown => (
            Level::Warn,
            "no client trusts this folder: Gemini may refuse runs here (accept Claude Code's \
             trust dialog, trust it in `gemini`, or set gemini.trust_workspace)"
                .into(),
        ),
    };
    r.add(level, "trust", text);
}

fn check_config(r: &mut Report) -> Config {
    let path = Config::file_path();
    let shown = path
        .as_deref()
        .map(|p| fmt::path(&p.to_string_lossy()))
        .unwrap_or_else(|| "(no HOME)".into());
    match Config::load() {
        Ok(c) => {
            let present = path.as_deref().is_some_and(Path::exists);
            let note = if present {
                ""
            } else {
                " (not present: defaults)"
            };
            r.add(Level::Ok, "config", format!("{shown}{note}"));
            c
        }
        Err(e) => {
            r.add(
                Level::Fail,
                "config",
                format!("{e}; hooks use the defaults until it is fixed"),
            );
            Config::default()
        }
    }
}

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn check_store(r: &mut Report, config: &Config) {
    let db = match config.db_path() {
        Ok(db) => db,
        Err(e) => return r.add(Level::Fail, "store", e.to_string()),
    };
    let shown = fmt::path(&db.to_string_lossy());
    let existed = db.exists();
    let busy = Duration::from_millis(config.store.busy_timeout_ms);
    let mut store = match Store::open(&db, busy) {
        Ok(s) => s,
        Err(e) => return r.add(Level::Fail, "store", e.to_string()),
    };
    let version = store.schema_version().unwrap_or(-1);
    let started = Instant::now();
    let written = store.write(|tx| {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('doctor_write_test', datetime('now')) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [],
        )
        .map_err(|e| agent_harness::error::Error::db("write to", &db, e))?;
        Ok(())
    });
    match written {
        Ok(()) => r.add(
            Level::Ok,
            "store",
            format!(
                "{shown} (schema {}{}; write test {:.1} ms)",
                SCHEMA_VERSION,
                match (existed, version) {
                    (false, _) => ", created now".to_owned(),
                    (true, v) if v < SCHEMA_VERSION => format!(", migrated from {v}"),
                    _ => String::new(),
                },
                started.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        Err(e) => r.add(Level::Fail, "store", e.to_string()),
    }
    // SQLite keeps the WAL beside the file itself, past a symlink `HARNESS_DB` may name.
    let real = std::fs::canonicalize(&db).unwrap_or_else(|_| db.clone());
    for (what, path, want) in [
        ("file", db.clone(), 0o600),
        ("wal", store::wal_path(&real), 0o600),
    ] {
        match mode(&path) {
            Some(m) if m & 0o077 != 0 => r.add(
                Level::Warn,
                "perms",
                format!(
                    "{} is {m:o}: others can read it; run chmod {want:o} {}",
                    what,
                    path.display()
                ),
            ),
            _ => {}
        }
    }
    if let Some(dir) = db.parent()
        && let Some(m) = mode(dir)
        && m & 0o077 != 0
        && paths::default_state_dir().as_deref() == Some(dir)
    {
        r.add(
            Level::Warn,
            "perms",
            format!(
                "{} is {m:o}; run chmod 700 {}",
                dir.display(),
                dir.display()
            ),
        );
    }
    let waiting = spool::waiting(&db);
    if waiting.spool_bytes > 0 {
        r.add(
            Level::Warn,
            "spool",
            format!(
                "{} holds {} bytes of events that could not be stored yet; the next hook call \
                 stores them",
                spool::path_for(&db).display(),
                waiting.spool_bytes
            ),
        );
    }
    if waiting.orphans > 0 {
        r.add(
            Level::Warn,
            "spool",
            format!(
                "{} file(s) of events left by a killed hook in {}; the next hook call stores them",
                waiting.orphans,
                spool::dir_for(&db).display()
            ),
        );
    }
    if waiting.bad > 0 {
        r.add(
            Level::Warn,
            "spool",
            format!(
                "{} spool file(s) with unreadable lines kept aside in {} (bad-*): inspect, then \
                 delete them",
                waiting.bad,
                spool::dir_for(&db).display()
            ),
        );
    }
    let free = agent_harness::error::free_space(&db);
    r.add(Level::Ok, "disk", format!("{free} free beside the store"));
    let log_path = log::path_for(&db);
    let now = agent_harness::time::now_ms();
    let problems = crate::problems::read(&log_path, now, 3);
    let shown_log = fmt::path(&log_path.to_string_lossy());
    let older = match problems.older {
        0 => String::new(),
        n => format!(" ({n} older in {shown_log})"),
    };
    if problems.recent.is_empty() {
        r.add(
            Level::Ok,
            "log",
            format!("no problems logged in the last day{older}"),
        );
    } else {
        r.add(
            Level::Warn,
            "log",
            format!("problems in the last day, latest last, in {shown_log}{older}:"),
        );
        for p in &problems.recent {
            r.add(Level::Warn, "", p.shown(now));
        }
    }
}

fn check_binaries(r: &mut Report) {
    let missing: Vec<&str> = HOOK_BINARIES
        .iter()
        .copied()
        .filter(|b| which::which(b).is_err())
        .collect();
    if missing.is_empty() {
        r.add(
            Level::Ok,
            "binaries",
            format!("all {} hook binaries on PATH", HOOK_BINARIES.len()),
        );
    } else {
        // Not a problem by itself: `harness install` then writes absolute paths, and the settings
        // check below says whether every hook command can run.
        r.add(
            Level::Ok,
            "binaries",
            format!(
                "{} of {} hook binaries not on PATH (hooks must name absolute paths; \
                 `cargo install --path .` puts them on PATH)",
                missing.len(),
                HOOK_BINARIES.len()
            ),
        );
    }
}

/// How many of the harness's events a settings file wires up, and hook commands that are broken.
fn settings_coverage(path: &Path) -> Result<Option<(usize, Vec<String>)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let ours = install::snippet_hooks(&|n| n.to_owned());
    let mut covered = 0;
    let mut broken = Vec::new();
    for event in ours.keys() {
        let hooks: Vec<&Value> = v
            .get("hooks")
            .and_then(|h| h.get(event))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("hooks").and_then(Value::as_array))
            .flatten()
            .filter(|h| install::is_harness_hook(h))
            .collect();
        if !hooks.is_empty() {
            covered += 1;
        }
        for h in hooks {
            let cmd = h["command"].as_str().unwrap_or_default();
            let runnable = if cmd.starts_with('/') {
                Path::new(cmd).is_file()
            } else {
                which::which(cmd).is_ok()
            };
            if !runnable {
                broken.push(cmd.to_owned());
            }
        }
    }
    Ok(Some((covered, broken)))
}

/// Whether two paths name one file: the same path, or both existing and resolving to one.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn check_settings(r: &mut Report) {
    let total = install::snippet_hooks(&|n| n.to_owned()).len();
    let cwd = std::env::current_dir().unwrap_or_default();
    let project = paths::project_root(&cwd).unwrap_or(cwd);
    let project_settings = project.join(".claude/settings.json");
    let user_settings = paths::claude_config_dir().map(|d| d.join("settings.json"));
    // Run from HOME (no repository above it), the project's file is the user's: told once.
    let project_settings = (!user_settings
        .as_deref()
        .is_some_and(|u| same_file(u, &project_settings)))
    .then_some(project_settings);
    let mut any = false;
    for (what, path) in [("project", project_settings), ("user", user_settings)] {
        let Some(path) = path else { continue };
        let shown = fmt::path(&path.to_string_lossy());
        match settings_coverage(&path) {
            Err(e) => r.add(Level::Fail, what, format!("cannot read {e}")),
            Ok(None) => r.add(Level::Ok, what, format!("{shown}: no file")),
            Ok(Some((covered, broken))) => {
                any |= covered > 0;
                let level = if broken.is_empty() {
                    Level::Ok
                } else {
                    Level::Fail
                };
                let mut text = format!("{shown}: harness hooks for {covered}/{total} events");
                if covered > 0 && covered < total {
                    text += " (run `harness install` to add the rest)";
                }
                if !broken.is_empty() {
                    text += &format!(
                        "; cannot run {}: reinstall with `harness install`",
                        broken.join(", ")
                    );
                }
                r.add(level, what, text);
            }
        }
    }
    if !any {
        r.add(
            Level::Warn,
            "hooks",
            "no settings file carries the harness hooks: run `harness install` (user-wide; \
             `--project DIR` for one project)",
        );
    }
}
