//! `harness install` / `uninstall` against settings files that already hold user hooks and keys.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Env, bin, stderr, stdout};

fn bin_dir() -> PathBuf {
    bin("harness").parent().unwrap().to_path_buf()
}

fn project(env: &Env) -> PathBuf {
    let p = env.dir.path().join("project");
    std::fs::create_dir_all(p.join(".git")).unwrap();
    std::fs::create_dir_all(p.join("src")).unwrap();
    p
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("agent-harness-backup"))
        .collect();
    v.sort();
    v
}

fn user_settings() -> Value {
    json!({
        "model": "opus",
        "permissions": {"allow": ["Bash(git status)"]},
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh", "timeout": 5}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]
        },
        "statusLine": {"type": "command", "command": "my-line"}
    })
}

#[test]
fn install_merges_keeps_everything_and_uninstall_restores_it() {
    let env = Env::new("install");
    let project = project(&env);
    let settings = project.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = user_settings();
    std::fs::write(&settings, serde_json::to_string_pretty(&original).unwrap()).unwrap();

    // From a subdirectory: `--project` alone finds the project by walking up to .git.
    let out = env
        .cmd("harness")
        .args(["install", "--project", "--bin-dir"])
        .arg(bin_dir())
        .current_dir(project.join("src"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Added agent-harness hooks for 20 events"),
        "{}",
        stdout(&out)
    );
    let merged = read(&settings);
    // The user's keys, in their order, and their hooks, first in their lists.
    let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["model", "permissions", "hooks", "statusLine"]);
    assert_eq!(
        merged["hooks"]["PreToolUse"][0],
        original["hooks"]["PreToolUse"][0]
    );
    assert_eq!(merged["hooks"]["Stop"][0], original["hooks"]["Stop"][0]);
    let ours = &merged["hooks"]["PreToolUse"][1]["hooks"][0];
    assert_eq!(
        ours["command"],
        bin_dir().join("harness-pre-tool-use").to_str().unwrap()
    );
    assert_eq!(ours["args"], json!([]), "exec form: no shell");
    assert_eq!(
        merged["hooks"]["SubagentStart"][0]["hooks"][0]["async"],
        true
    );
    assert_eq!(backups(settings.parent().unwrap()).len(), 1);
    assert_eq!(read(&backups(settings.parent().unwrap())[0]), original);

    // Again: nothing changes, no new backup.
    let text = std::fs::read_to_string(&settings).unwrap();
    let out = env
        .cmd("harness")
        .args(["install", "--bin-dir"])
        .arg(bin_dir())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("already carries"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), text);
    assert_eq!(backups(settings.parent().unwrap()).len(), 1);

    // The hooks it wrote run.
    let out = env
        .cmd("harness")
        .arg("doctor")
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("harness hooks for 20/20 events"),
        "{}",
        stdout(&out)
    );

    let out = env
        .cmd("harness")
        .args(["uninstall", "--project"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read(&settings), original);
    assert_eq!(
        backups(settings.parent().unwrap()).len(),
        2,
        "install's backup is kept"
    );
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let env = Env::new("dry");
    let project = project(&env);
    let out = env
        .cmd("harness")
        .args(["install", "--dry-run", "--bin-dir"])
        .arg(bin_dir())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("+     \"SessionStart\": ["), "{text}");
    assert!(text.contains("nothing written"), "{text}");
    assert!(!project.join(".claude").exists());
}

#[test]
fn user_install_goes_to_the_users_settings() {
    let env = Env::new("user");
    let out = env
        .cmd("harness")
        .args(["install", "--user", "--bin-dir"])
        .arg(bin_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let settings = env.home.join(".claude/settings.json");
    assert_eq!(read(&settings)["hooks"].as_object().unwrap().len(), 20);
    let out = env
        .cmd("harness")
        .args(["uninstall", "--user"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !settings.exists(),
        "a file that held only our hooks is removed"
    );
}

#[test]
fn a_malformed_settings_file_is_named_and_left_untouched() {
    let env = Env::new("badsettings");
    let project = project(&env);
    let settings = project.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{ \"hooks\": { oops").unwrap();
    let out = env
        .cmd("harness")
        .args(["install", "--bin-dir"])
        .arg(bin_dir())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(settings.to_str().unwrap()), "{err}");
    assert!(err.contains("fix the JSON"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{ \"hooks\": { oops"
    );
}

#[test]
fn a_bin_dir_without_the_binaries_is_refused() {
    let env = Env::new("nobins");
    let project = project(&env);
    let out = env
        .cmd("harness")
        .args(["install", "--bin-dir"])
        .arg(env.dir.path())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lacks harness-session-start"),
        "{}",
        stderr(&out)
    );
    assert!(!project.join(".claude").exists());
}

#[test]
fn the_plugin_hooks_match_the_snippet() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snippet = read(&root.join("settings.snippet.json"));
    let plugin = read(&root.join("hooks.json"));
    assert_eq!(plugin["hooks"], snippet["hooks"]);
    // A user who merges the snippet by hand gets the status line that records official quota.
    assert_eq!(snippet["statusLine"]["command"], "harness-statusline");
    let manifest = read(&root.join(".claude-plugin/plugin.json"));
    assert_eq!(manifest["name"], "agent-harness");
    assert_eq!(manifest["hooks"], "./hooks.json");
}

#[test]
fn gemini_hooks_go_to_the_projects_gemini_settings_and_come_out_again() {
    let env = Env::new("gemini-install");
    let project = project(&env);
    let settings = project.join(".gemini/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, r#"{"model": {"name": "gemini-2.5-flash"}}"#).unwrap();
    let out = env
        .cmd("harness")
        .args(["install", "--gemini", "--bin-dir"])
        .arg(bin_dir())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = read(&settings);
    assert_eq!(merged["model"]["name"], "gemini-2.5-flash");
    let hooks = merged["hooks"].as_object().unwrap();
    let events: Vec<&str> = hooks.keys().map(String::as_str).collect();
    assert_eq!(
        events,
        [
            "SessionStart",
            "BeforeAgent",
            "BeforeTool",
            "AfterTool",
            "AfterAgent",
            "Notification",
            "SessionEnd"
        ]
    );
    let hook = &hooks["BeforeTool"][0]["hooks"][0];
    assert_eq!(hook["timeout"], 30000, "Gemini reads milliseconds");
    assert_eq!(
        hook["command"],
        bin_dir().join("harness-pre-tool-use").to_str().unwrap()
    );
    assert!(
        !project.join(".claude").exists(),
        "Claude's settings untouched"
    );
    let out = env
        .cmd("harness")
        .args(["uninstall", "--gemini", "--project"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read(&settings),
        json!({"model": {"name": "gemini-2.5-flash"}})
    );
}

/// The README's first command, as a newcomer types it after `cargo install` put the binaries on
/// PATH, run in a fresh clone of this repository with an empty HOME.
#[test]
fn the_readmes_main_command_installs_user_wide_and_never_into_the_clone() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let main = readme
        .lines()
        .find(|l| l.starts_with("cargo install"))
        .expect("the README's install command");
    assert_eq!(main, "cargo install --locked --path . && harness install");
    let second = main.split(" && ").nth(1).unwrap();

    let env = Env::new("readme-install");
    let clone = env.dir.path().join("agent-harness");
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks", env!("CARGO_MANIFEST_DIR")])
        .arg(&clone)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        // Not a git checkout (a source tarball): the clone is simulated by the manifest alone.
        std::fs::create_dir_all(clone.join(".git")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            clone.join("Cargo.toml"),
        )
        .unwrap();
    }
    let mut words = second.split_whitespace();
    let program = words.next().unwrap();
    let out = env
        .cmd(program)
        .args(words)
        .env("PATH", support::path_with_bins())
        .current_dir(&clone)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let settings = env.home.join(".claude/settings.json");
    assert_eq!(read(&settings)["hooks"].as_object().unwrap().len(), 20);
    assert_eq!(
        read(&settings)["statusLine"]["command"],
        "harness-statusline"
    );
    assert!(
        !clone.join(".claude").exists(),
        "nothing in the source tree"
    );
    assert!(stdout(&out).contains("every project"), "{}", stdout(&out));
}

#[test]
fn a_project_install_outside_git_is_refused_naming_both_ways() {
    let env = Env::new("no-git");
    // Outside this checkout (the test's temp dirs are inside it, a git repository).
    let dir = std::env::temp_dir().join(format!("ah-no-git-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = env
        .cmd("harness")
        .args(["install", "--project", "--bin-dir"])
        .arg(bin_dir())
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("--user") && err.contains("--project DIR"),
        "{err}"
    );
    assert!(!dir.join(".claude").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_project_install_in_the_harness_checkout_is_refused_unless_named() {
    let env = Env::new("self-install");
    let checkout = env.dir.path().join("agent-harness");
    std::fs::create_dir_all(checkout.join(".git")).unwrap();
    std::fs::write(
        checkout.join("Cargo.toml"),
        "[package]\nname = \"agent-harness\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        env.cmd("harness")
            .args(args)
            .arg("--bin-dir")
            .arg(bin_dir())
            .current_dir(&checkout)
            .output()
            .unwrap()
    };
    let out = run(&["install", "--project"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("own source tree"), "{}", stderr(&out));
    assert!(!checkout.join(".claude").exists());
    let out = run(&["install", "--project", checkout.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(checkout.join(".claude/settings.json").exists());
}

#[test]
fn uninstall_says_what_it_removed_and_leaves_no_empty_folder_or_backup() {
    let env = Env::new("uninstall-clean");
    let project = project(&env);
    let out = env
        .cmd("harness")
        .args(["install", "--bin-dir"])
        .arg(bin_dir())
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .cmd("harness")
        .args(["uninstall", "--project"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("the harness hooks for 20 events and its status line"),
        "{text}"
    );
    assert!(!project.join(".claude").exists(), "{text}");
}

#[test]
fn with_locks_fail_closed_install_sets_on_failure_block_on_the_lock_hook_only() {
    let env = Env::new("install-fail-closed");
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    env.config(r#"{"locks": {"fail_closed": true}}"#);
    env.install(&["--project".as_ref(), project.as_os_str()]);
    let settings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.join(".claude/settings.json")).unwrap(),
    )
    .unwrap();
    for (event, groups) in settings["hooks"].as_object().unwrap() {
        let want = (event == "PreToolUse").then_some("block");
        assert_eq!(groups[0]["hooks"][0]["onFailure"].as_str(), want, "{event}");
    }
}

/// Run from its build directory with that directory not on PATH, install writes absolute paths
/// for the hooks, and the slash commands run the same absolute `harness`: a bare `harness` there
/// would fail with "command not found". Uninstall still recognises and removes them.
#[test]
fn off_path_the_slash_commands_run_the_absolute_harness_and_uninstall_removes_them() {
    let env = Env::new("offpath");
    let dir = bin_dir();
    let harness = dir.join("harness").to_string_lossy().into_owned();
    let out = env
        .cmd("harness")
        .env("PATH", "/usr/bin:/bin")
        .arg("install")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("to PATH to use bare names"), "{text}");
    assert!(!text.contains("cargo install"), "{text}");
    let commands = env.home.join(".claude/commands");
    let delegate = std::fs::read_to_string(commands.join("delegate-gemini.md")).unwrap();
    assert!(
        delegate.contains(&format!("!`{harness} delegate --pending")),
        "{delegate}"
    );
    assert!(
        delegate.contains(&format!("allowed-tools: Bash({harness} delegate:*)")),
        "{delegate}"
    );
    let review = std::fs::read_to_string(commands.join("review.md")).unwrap();
    assert!(
        review.contains(&format!("!`{harness} review --pending")),
        "{review}"
    );
    assert!(!review.contains("`harness "), "{review}");
    let settings = read(&env.home.join(".claude/settings.json"));
    let stop = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(stop.starts_with(&*dir.to_string_lossy()), "{stop}");

    // Installed again with the binaries on PATH: the commands are ours, so they are updated.
    let out = env
        .cmd("harness")
        .env("PATH", support::path_with_bins())
        .arg("install")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("updated /review"), "{}", stdout(&out));
    let review = std::fs::read_to_string(commands.join("review.md")).unwrap();
    assert!(review.contains("!`harness review --pending"), "{review}");

    // Back off PATH, then uninstall: both files go.
    let out = env
        .cmd("harness")
        .env("PATH", "/usr/bin:/bin")
        .arg("install")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .cmd("harness")
        .env("PATH", "/usr/bin:/bin")
        .arg("uninstall")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!commands.join("review.md").exists(), "{}", stdout(&out));
    assert!(!commands.join("delegate-gemini.md").exists());
}

#[test]
fn doctor_run_from_home_tells_the_user_settings_once() {
    let env = Env::new("doctor-home");
    // HOME is the project (a dotfiles repository; or no repository above HOME): its
    // `.claude/settings.json` is the user's.
    std::fs::create_dir_all(env.home.join(".git")).unwrap();
    let out = env
        .cmd("harness")
        .args(["install", "--bin-dir"])
        .arg(bin_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .cmd("harness")
        .arg("doctor")
        .current_dir(&env.home)
        .output()
        .unwrap();
    let said = stdout(&out);
    assert_eq!(
        said.matches("harness hooks for 20/20 events").count(),
        1,
        "{said}"
    );
    assert!(!said.contains("project "), "{said}");
    assert!(said.contains("user "), "{said}");
}
