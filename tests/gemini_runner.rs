//! The Gemini runner through `harness delegate`, against a fake `gemini` (tests/fakes/gemini)
//! that prints the real stream-json shapes and misbehaves on request.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use agent_harness::store::runs;
use serde_json::{Value, json};
use support::{Env, stderr, stdout};

fn fake() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/gemini")
}

struct Setup {
    env: Env,
    project: PathBuf,
    log: PathBuf,
}

fn setup(label: &str, extra_config: Value) -> Setup {
    let env = Env::new(label);
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let mut config = json!({"gemini": {"binary": fake(), "wait_secs": 30, "timeout_secs": 60}});
    for (k, v) in extra_config.as_object().unwrap() {
        config["gemini"][k] = v.clone();
    }
    env.config(&config.to_string());
    // The user trusts the project in Claude Code, as anyone who runs /delegate-gemini from an
    // interactive session there has.
    trust_in_claude(&env, &project);
    let log = env.dir.path().join("fake.log");
    Setup { env, project, log }
}

fn trust_in_claude(env: &Env, project: &std::path::Path) {
    let project = std::fs::canonicalize(project).unwrap();
    std::fs::write(
        env.home.join(".claude.json"),
        json!({"projects": {project.to_str().unwrap(): {"hasTrustDialogAccepted": true}}})
            .to_string(),
    )
    .unwrap();
}

impl Setup {
    /// `harness delegate <args>` in the project, with the fake in `mode`.
    fn delegate_command(&self, mode: &str, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.env.cmd("harness");
        cmd.arg("delegate")
            .args(args)
            .env("FAKE_GEMINI_MODE", mode)
            .env("FAKE_GEMINI_LOG", &self.log)
            .env("FAKE_GEMINI_STATE", self.env.dir.path().join("fake-state"))
            .env("FAKE_GEMINI_PIDS", self.env.dir.path().join("pids"))
            .current_dir(&self.project);
        cmd
    }

    fn delegate(&self, mode: &str, args: &[&str]) -> Output {
        self.delegate_command(mode, args).output().unwrap()
    }

    /// A run of the fake that answers after `secs` seconds.
    fn delegate_slow(&self, secs: &str, args: &[&str]) -> Output {
        self.delegate_command("slow", args)
            .env("FAKE_GEMINI_SLEEP", secs)
            .output()
            .unwrap()
    }

    /// `harness install --gemini --user`, as the user does once for write runs.
    fn install_gemini_hooks(&self) {
        support::gemini_cli::install_user_hooks(&self.env);
    }

    fn runs(&self) -> Vec<runs::Run> {
        runs::recent(&self.env.db(), 100).unwrap()
    }

    fn records(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .split('\u{1e}')
            .map(str::to_owned)
            .collect()
    }

    /// Each call's arguments, as the fake received them.
    fn calls(&self) -> Vec<Vec<String>> {
        self.records()
            .iter()
            .filter_map(|r| r.strip_prefix("ARGS"))
            .map(|r| r.split('\0').skip(1).map(str::to_owned).collect())
            .collect()
    }

    fn env_lines(&self) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.starts_with("ENV"))
            .collect()
    }
}

fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// The prompt, passed as one `--prompt=<text>` argument.
fn prompt_arg(args: &[String]) -> Option<&str> {
    args.iter().find_map(|a| a.strip_prefix("--prompt="))
}

#[test]
fn a_read_only_run_is_started_safely_recorded_and_reported() {
    let s = setup("runner-ok", json!({}));
    let out = s.delegate("success", &["summarize", "the", "README"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("finished in"), "{report}");
    assert!(report.contains("<<< gemini-output gr-"), "{report}");
    assert!(report.contains("Fake answer."), "{report}");

    let calls = s.calls();
    assert_eq!(calls.len(), 1);
    let args = &calls[0];
    let prompt = prompt_arg(args).unwrap();
    assert!(
        prompt.starts_with("summarize the README\n\n---\nContext from agent-harness"),
        "{prompt}"
    );
    assert!(prompt.contains("This run is read-only"), "{prompt}");
    assert_eq!(arg_after(args, "-o"), Some("stream-json"));
    assert_eq!(arg_after(args, "--approval-mode"), Some("default"));
    assert!(args.contains(&"--skip-trust".to_string()));
    let run = &s.runs()[0];
    assert_eq!(arg_after(args, "--session-id"), Some(run.run_id.as_str()));
    let policy = std::fs::read_to_string(arg_after(args, "--policy").unwrap()).unwrap();
    for tool in [
        "enter_plan_mode",
        "exit_plan_mode",
        "write_file",
        "replace",
        "run_shell_command",
    ] {
        assert!(
            policy.contains(&format!("\"{tool}\"")),
            "{tool} not denied: {policy}"
        );
    }
    let env = &s.env_lines()[0];
    assert!(env.contains("GEMINI_CLI_TRUST_WORKSPACE=true"), "{env}");
    assert!(
        env.contains(&format!("PWD={}", s.project.display())),
        "{env}"
    );
    // Nothing is slipped in through system settings (Gemini ignores them unless root owns them):
    // the run gets a Gemini home whose settings register the harness hooks, removed afterwards.
    assert!(env.contains("GEMINI_CLI_SYSTEM_DEFAULTS_PATH= "), "{env}");
    assert!(env.contains("HOME_LOCK_HOOK=yes"), "{env}");
    let home = env
        .split(' ')
        .find_map(|kv| kv.strip_prefix("GEMINI_CLI_HOME="))
        .unwrap();
    assert!(!Path::new(home).exists(), "{home} left behind");

    assert_eq!(run.status, "success");
    assert_eq!(run.mode, "read-only");
    assert_eq!(
        (
            run.input_tokens,
            run.output_tokens,
            run.total_tokens,
            run.requests
        ),
        (Some(500), Some(30), Some(530), Some(2))
    );
    assert_eq!(run.result.as_deref(), Some("Fake answer."));
    assert_eq!(run.waiter, "delivered");
    // `harness runs` lists it; `runs show` prints it whole.
    let out = s.env.cmd("harness").args(["runs"]).output().unwrap();
    assert!(stdout(&out).contains(&run.run_id), "{}", stdout(&out));
    let prefix = &run.run_id[..6];
    let out = s
        .env
        .cmd("harness")
        .args(["runs", "show", prefix])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("task: summarize the README"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_quota_error_is_retried_once_on_the_fallback_model() {
    let s = setup("runner-quota", json!({}));
    let out = s.delegate("quota-then-success", &["do", "it"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Answer from the fallback."),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("retried on gemini-2.5-flash"),
        "{}",
        stdout(&out)
    );
    let calls = s.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        arg_after(&calls[0], "-m"),
        None,
        "the first try uses Gemini's own choice"
    );
    assert_eq!(arg_after(&calls[1], "-m"), Some("gemini-2.5-flash"));
    assert_ne!(
        arg_after(&calls[0], "--session-id"),
        arg_after(&calls[1], "--session-id")
    );
    assert_eq!(
        s.runs()[0].retried_with.as_deref(),
        Some("gemini-2.5-flash")
    );

    // Exhausted on the fallback too: one retry only, and the reset time.
    let s = setup("runner-quota2", json!({}));
    let out = s.delegate("quota", &["do", "it"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("(quota)"), "{text}");
    assert!(text.contains("reset at midnight Pacific time"), "{text}");
    assert_eq!(s.calls().len(), 2);
    assert_eq!(s.runs()[0].error_kind.as_deref(), Some("quota"));
}

#[test]
fn failures_are_classified_with_advice() {
    let cases = [
        ("auth", "auth", ". Set GEMINI_API_KEY (an AI Studio key)"),
        ("crash", "no_result", "heap out of memory"),
        ("garbage", "no_result", "stopped without a result"),
    ];
    for (mode, kind, says) in cases {
        let s = setup(&format!("runner-{mode}"), json!({}));
        let out = s.delegate(mode, &["task"]);
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let text = stdout(&out);
        assert!(text.contains(&format!("({kind})")), "{mode}: {text}");
        assert!(text.contains(says), "{mode}: {text}");
        assert_eq!(s.runs()[0].error_kind.as_deref(), Some(kind), "{mode}");
    }
    let s = setup("runner-missing", json!({"binary": "/nonexistent/gemini"}));
    let out = s.delegate("success", &["task"]);
    assert!(
        stdout(&out).contains("npm install -g @google/gemini-cli"),
        "{}",
        stdout(&out)
    );
}

/// Gemini names the settings file of the home it ran in; a run's home is the harness's own, made
/// for the run and gone after it. The report points at the user's Gemini settings instead.
#[test]
fn an_auth_failure_names_the_users_gemini_settings_not_the_runs_home() {
    let s = setup("runner-auth-home", json!({}));
    let out = s.delegate("auth", &["say hi"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let calls = s.env_lines();
    assert!(
        calls.iter().any(|l| l.contains("/home-gr-")),
        "the run had a home of its own: {calls:?}"
    );
    let users = s.env.home.join(".gemini/settings.json");
    assert!(
        text.contains(&format!(
            "Please set an Auth method in your {}",
            users.display()
        )),
        "{text}"
    );
    assert!(!text.contains("/home-gr-"), "{text}");
    assert!(
        text.contains("GOOGLE_GENAI_USE_GCA. Set GEMINI_API_KEY"),
        "{text}"
    );
}

#[test]
fn a_folder_is_trusted_for_a_run_only_when_the_user_trusts_it() {
    let s = setup("runner-trust", json!({}));
    // Nobody trusts it: Gemini decides (and refuses), and the report says how to trust it.
    std::fs::remove_file(s.env.home.join(".claude.json")).unwrap();
    let out = s.delegate("success", &["task"]);
    let text = stdout(&out);
    assert!(text.contains("(untrusted)"), "{text}");
    assert!(text.contains("gemini.trust_workspace"), "{text}");
    let args = &s.calls()[0];
    assert!(!args.contains(&"--skip-trust".to_string()), "{args:?}");
    // Trusted by Gemini's own rules, for the project's parent.
    let gemini_dir = s.env.home.join(".gemini");
    std::fs::create_dir_all(&gemini_dir).unwrap();
    let parent = std::fs::canonicalize(s.project.parent().unwrap()).unwrap();
    let rules = |level: &str| json!({parent.to_str().unwrap(): level}).to_string();
    std::fs::write(
        gemini_dir.join("trustedFolders.json"),
        rules("TRUST_FOLDER"),
    )
    .unwrap();
    assert_eq!(s.delegate("success", &["task"]).status.code(), Some(0));
    // Gemini's rules are read where Gemini reads them: under `$GEMINI_CLI_HOME` when it is set.
    let elsewhere = s.env.dir.path().join("gemini-home");
    std::fs::create_dir_all(elsewhere.join(".gemini")).unwrap();
    std::fs::rename(
        gemini_dir.join("trustedFolders.json"),
        elsewhere.join(".gemini/trustedFolders.json"),
    )
    .unwrap();
    assert!(stdout(&s.delegate("success", &["task"])).contains("(untrusted)"));
    let out = s
        .delegate_command("success", &["task"])
        .env("GEMINI_CLI_HOME", &elsewhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    std::fs::rename(
        elsewhere.join(".gemini/trustedFolders.json"),
        gemini_dir.join("trustedFolders.json"),
    )
    .unwrap();
    // Claude Code trusts it but Gemini was told not to: Gemini's no wins.
    trust_in_claude(&s.env, &s.project);
    std::fs::write(
        gemini_dir.join("trustedFolders.json"),
        rules("DO_NOT_TRUST"),
    )
    .unwrap();
    assert!(stdout(&s.delegate("success", &["task"])).contains("(untrusted)"));
    // The harness config decides over both.
    let mut config = json!({"gemini": {"binary": fake(), "trust_workspace": true}});
    s.env.config(&config.to_string());
    assert_eq!(s.delegate("success", &["task"]).status.code(), Some(0));
    config["gemini"]["trust_workspace"] = json!(false);
    s.env.config(&config.to_string());
    std::fs::remove_file(gemini_dir.join("trustedFolders.json")).unwrap();
    assert!(stdout(&s.delegate("success", &["task"])).contains("(untrusted)"));
}

#[test]
fn a_hung_run_is_ended_with_its_whole_process_group() {
    let s = setup("runner-hang", json!({"timeout_secs": 2}));
    let started = Instant::now();
    let out = s.delegate("hang", &["task"]);
    let took = started.elapsed();
    assert!(stdout(&out).contains("(timeout)"), "{}", stdout(&out));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let pids = std::fs::read_to_string(s.env.dir.path().join("pids")).unwrap();
    for pid in pids.split_whitespace() {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {pid} of the run survived");
    }
}

#[test]
fn a_huge_output_is_capped_and_parsed_fast() {
    let s = setup("runner-huge", json!({}));
    let started = Instant::now();
    let out = s.delegate("huge", &["task"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("THE END"), "the end is kept");
    assert!(report.contains("characters left out"), "{}", &report[..300]);
    assert!(report.len() < 8000, "capped: {} bytes", report.len());
    let stored = s.runs()[0].result.clone().unwrap();
    assert!(stored.len() < 300 * 1024, "stored {} bytes", stored.len());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_write_attempt_in_a_read_only_run_is_refused_and_nothing_counts_as_written() {
    let s = setup("runner-ro-write", json!({}));
    let out = s.delegate("write-attempt", &["write", "out.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = &s.runs()[0];
    assert_eq!(run.files_written.as_deref(), Some("[]"));
    assert_eq!(run.tool_calls, Some(1));
    assert!(!s.project.join("out.txt").exists());
}

#[test]
fn write_mode_uses_auto_edit_and_a_policy_without_shell_or_plan_mode() {
    let s = setup("runner-write", json!({}));
    // User settings the harness cannot merge its hooks into (Gemini allows comments): a write run
    // would ignore the file locks, so it does not start, and says how to fix it.
    let settings = s.env.home.join(".gemini/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "// my settings\n{}\n").unwrap();
    let out = s.delegate("success", &["--write", "fix", "it"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("not plain JSON"), "{text}");
    assert!(text.contains("harness install --gemini --user"), "{text}");
    assert!(s.calls().is_empty(), "gemini was started");
    // A read-only run goes on (it cannot write), without the hooks.
    assert_eq!(s.delegate("success", &["look"]).status.code(), Some(0));
    assert!(s.env_lines()[0].contains("HOME_LOCK_HOOK=no"));
    // Hooks registered in the user's own settings: used as they are, no home of the run's.
    std::fs::remove_file(&settings).unwrap();
    s.install_gemini_hooks();
    let out = s.delegate("success", &["--write", "fix", "it"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        s.env_lines()[1].contains("GEMINI_CLI_HOME= "),
        "{}",
        s.env_lines()[1]
    );
    let args = &s.calls()[1];
    assert_eq!(arg_after(args, "--approval-mode"), Some("auto_edit"));
    let policy = std::fs::read_to_string(arg_after(args, "--policy").unwrap()).unwrap();
    assert!(policy.contains("\"exit_plan_mode\"") && policy.contains("\"run_shell_command\""));
    assert!(!policy.contains("\"write_file\""), "{policy}");
    assert!(prompt_arg(args).unwrap().contains("You may edit files"));
}

#[test]
fn a_slow_run_goes_on_in_the_background_and_its_answer_reaches_the_session_later() {
    let s = setup("runner-bg", json!({}));
    let session = "cccccccc-0000-4000-8000-000000000003";
    let out = s.delegate_slow(
        "3",
        &["--wait", "1", "--session", session, "look", "around"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is still working"),
        "{}",
        stdout(&out)
    );
    // The worker finishes on its own and leaves a notice for the session.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.runs()[0].status != "success" {
        assert!(
            Instant::now() < deadline,
            "the background run never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let prompt = json!({"session_id": session, "transcript_path": "/t", "cwd": s.project,
                        "hook_event_name": "UserPromptSubmit", "prompt": "next"});
    let out = s.env.hook("harness-user-prompt-submit", prompt.to_string());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let context = v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(context.contains("Slow answer."), "{context}");
    assert!(context.contains("<<< gemini-output"), "{context}");
}

#[test]
fn the_pending_task_reaches_gemini_as_one_argument_and_nothing_runs_in_a_shell() {
    let s = setup("runner-hostile", json!({}));
    let session = "dddddddd-0000-4000-8000-000000000004";
    let marker = s.env.dir.path().join("pwned");
    let hostile = format!(
        "--write $(touch {m}) `touch {m}` '; touch {m}; echo \"quoted\" \\\nnext line",
        m = marker.display()
    );
    let expansion = json!({"session_id": session, "transcript_path": "/t", "cwd": s.project,
        "hook_event_name": "UserPromptExpansion", "expansion_type": "slash_command",
        "command_name": "delegate-gemini", "command_args": hostile,
        "prompt": format!("/delegate-gemini {hostile}")});
    let out = s
        .env
        .hook("harness-user-prompt-expansion", expansion.to_string());
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
    let out = s.delegate("success", &["--pending", "--session", session]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Fake answer."), "{}", stdout(&out));
    let args = &s.calls()[0];
    let prompt = prompt_arg(args).unwrap();
    let task = hostile.strip_prefix("--write ").unwrap();
    assert!(prompt.starts_with(task), "the task, verbatim: {prompt:?}");
    assert_eq!(
        arg_after(args, "--approval-mode"),
        Some("auto_edit"),
        "--write was honoured"
    );
    assert!(!marker.exists(), "a shell ran part of the arguments");
    // Taken once.
    let out = s.delegate("success", &["--pending", "--session", session]);
    assert!(
        stdout(&out).contains("no /delegate-gemini task is waiting"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn runs_beyond_the_concurrency_limit_queue() {
    let s = setup("runner-slots", json!({"max_concurrent": 1}));
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| s.delegate_slow("2", &["first"]));
        std::thread::sleep(Duration::from_millis(300));
        let b = scope.spawn(|| s.delegate_slow("2", &["second"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    let mut rows = s.runs();
    rows.sort_by_key(|r| r.started_ms);
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1].started_ms.unwrap() >= rows[0].finished_ms.unwrap() - 50,
        "the second started {} ms before the first finished",
        rows[0].finished_ms.unwrap() - rows[1].started_ms.unwrap()
    );
    // A run that waits too long for a slot gives up, and leaves no Gemini home behind either.
    let config = |timeout: u64| {
        json!({"gemini": {"binary": fake(), "max_concurrent": 1, "timeout_secs": timeout}})
            .to_string()
    };
    s.env.config(&config(60));
    let (held, late) = std::thread::scope(|scope| {
        let a = scope.spawn(|| s.delegate_slow("3", &["holds the slot"]));
        std::thread::sleep(Duration::from_millis(500));
        s.env.config(&config(1));
        let b = s.delegate("success", &["waits"]);
        (a.join().unwrap(), b)
    });
    assert!(stdout(&held).contains("Slow answer."), "{}", stdout(&held));
    assert!(stdout(&late).contains("Gemini slots"), "{}", stdout(&late));
    let state = s.env.db.parent().unwrap().join("gemini");
    let homes: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("home-"))
        .collect();
    assert!(homes.is_empty(), "{homes:?}");
}

/// Ends the processes whose pids the fake wrote to a file (the ones it started outside the
/// run's process group), however the test ends.
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
}

#[test]
fn a_descendant_holding_stdout_open_neither_keeps_the_run_past_its_answer_nor_its_slot() {
    // Before: the worker read stdout to its end, so a descendant in a session of its own that
    // kept it open held the run 120 s against a 6 s timeout, the finished answer was recorded as
    // a timeout, and the slot stayed taken.
    let s = setup(
        "runner-escape",
        json!({"timeout_secs": 6, "max_concurrent": 1}),
    );
    let _escaped = KillOnDrop(s.env.dir.path().join("pids"));
    let started = Instant::now();
    let out = s
        .delegate_command("escape", &["task"])
        .env("FAKE_GEMINI_SLEEP", "120")
        .output()
        .unwrap();
    let took = started.elapsed();
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{report}{}", stderr(&out));
    assert!(report.contains("Answered before the escape."), "{report}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let run = &s.runs()[0];
    assert_eq!(run.status, "success");
    assert!(
        run.result
            .as_deref()
            .unwrap_or("")
            .contains("was not waited for"),
        "{:?}",
        run.result
    );
    // The one slot is free again at once.
    let next = s.delegate("success", &["next"]);
    assert_eq!(next.status.code(), Some(0), "{}", stdout(&next));
    assert!(stdout(&next).contains("Fake answer."), "{}", stdout(&next));
}

#[test]
fn a_200_mib_stream_json_line_is_skipped_and_the_worker_stays_small() {
    // Before: the line was buffered whole (and copied), taking the worker to 606 MiB.
    let s = setup("runner-long-line", json!({}));
    let out = s.delegate("long-line", &["task"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("After the long line."),
        "{}",
        stdout(&out)
    );
    let run = &s.runs()[0];
    assert_eq!(run.status, "success");
    let result = run.result.as_deref().unwrap_or("");
    assert!(
        result.contains("1 stream-json line(s) over 8 MiB skipped"),
        "{result}"
    );
    let hwm_kib: u64 = s
        .records()
        .iter()
        .find_map(|r| r.strip_prefix("HWM "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the fake recorded the worker's peak memory");
    assert!(
        hwm_kib < 64 * 1024,
        "the worker peaked at {} MiB",
        hwm_kib / 1024
    );
}

#[test]
fn a_personal_google_login_is_refused_and_the_report_says_what_works_instead() {
    let s = setup("runner-personal", json!({}));
    let out = s.delegate("personal-login", &["task"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("(personal_login)"), "{text}");
    assert!(
        text.contains("no longer supported for Gemini Code Assist for individuals"),
        "{text}"
    );
    for works in [
        "GEMINI_API_KEY",
        "\"gemini-api-key\"",
        "GOOGLE_GENAI_USE_VERTEXAI",
    ] {
        assert!(text.contains(works), "{works} not named: {text}");
    }
    assert!(!text.contains("log in once"), "{text}");
    assert_eq!(
        s.calls().len(),
        1,
        "not retried: another model does not help"
    );
    assert_eq!(s.runs()[0].error_kind.as_deref(), Some("personal_login"));
}

#[test]
fn doctor_finds_gemini_through_the_config_and_says_whether_its_login_works() {
    // Before: doctor looked only on PATH, so it called gemini missing while delegation (through
    // gemini.binary) worked, and it never looked at how Gemini would log in.
    let s = setup("runner-doctor", json!({}));
    let doctor = |vars: &[(&str, &str)]| {
        let mut cmd = s.env.cmd("harness");
        cmd.arg("doctor").current_dir(&s.project);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        stdout(&cmd.output().unwrap())
    };
    let settings = s.env.home.join(".gemini/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let select = |t: &str| {
        std::fs::write(
            &settings,
            json!({"security": {"auth": {"selectedType": t}}}).to_string(),
        )
        .unwrap()
    };
    select("oauth-personal");
    let out = doctor(&[("GEMINI_API_KEY", "k")]);
    let line = |what: &str| {
        out.lines()
            .find(|l| l[6..].starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line: {out}"))
            .to_owned()
    };
    assert!(line("gemini ").starts_with("ok"), "{out}");
    assert!(line("gemini ").contains("(gemini.binary)"), "{out}");
    let auth = line("gem auth");
    assert!(auth.starts_with("warn"), "{auth}");
    assert!(auth.contains("Login with Google (oauth-personal"), "{auth}");
    assert!(auth.contains("GEMINI_API_KEY"), "{auth}");
    select("gemini-api-key");
    let out = doctor(&[]);
    assert!(
        out.contains("warn  gem auth   API key (gemini-api-key"),
        "{out}"
    );
    assert!(out.contains("GEMINI_API_KEY is not set"), "{out}");
    let out = doctor(&[("GEMINI_API_KEY", "k")]);
    assert!(
        out.contains("ok    gem auth   API key (gemini-api-key"),
        "{out}"
    );
    // From the .env file Gemini CLI would load.
    std::fs::write(s.project.join(".env"), "GEMINI_API_KEY=\"from-dotenv\"\n").unwrap();
    assert!(doctor(&[]).contains("ok    gem auth   API key"));
    // A gemini.binary that is not there is named.
    s.env
        .config(&json!({"gemini": {"binary": "/nonexistent/gemini"}}).to_string());
    let out = doctor(&[]);
    assert!(
        out.contains("warn  gemini     gemini.binary is /nonexistent/gemini"),
        "{out}"
    );
}

#[test]
fn a_slow_delegation_shows_progress_on_a_terminal_and_nothing_when_piped() {
    let s = setup("progress", json!({}));
    let piped = s.delegate_slow("1", &["look around"]);
    assert!(piped.status.success(), "{}", support::stderr(&piped));
    assert!(
        !support::stderr(&piped).contains("waiting for Gemini"),
        "{}",
        support::stderr(&piped)
    );
    // The same under a terminal: `script` gives the command a pty and keeps what it drew.
    let typescript = s.env.dir.path().join("typescript");
    let line = format!(
        "{} delegate 'look around'",
        agent_harness::shell::quote(&support::bin("harness").to_string_lossy())
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &line])
        .arg(&typescript)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &s.env.home)
        .env("HARNESS_DB", &s.env.db)
        .env(
            "HARNESS_CONFIG",
            s.env.home.join(".config/agent-harness/config.json"),
        )
        .env("FAKE_GEMINI_MODE", "slow")
        .env("FAKE_GEMINI_SLEEP", "1")
        .env("FAKE_GEMINI_LOG", &s.log)
        .env("FAKE_GEMINI_STATE", s.env.dir.path().join("fake-state"))
        .env("FAKE_GEMINI_PIDS", s.env.dir.path().join("pids"))
        .current_dir(&s.project)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(tty.status.success(), "{}", support::stderr(&tty));
    let drawn = std::fs::read_to_string(&typescript).unwrap_or_default();
    assert!(drawn.contains("waiting for Gemini CLI"), "{drawn}");
    assert!(drawn.contains(" s"), "{drawn}");
}
