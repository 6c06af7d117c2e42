//! Starting Gemini CLI: one headless run (`--prompt=... -o stream-json`) in its own process group,
//! with a hard timeout that ends the whole group, stdout folded as it streams, stderr's end kept,
//! and the exit classified into an error a user can act on.
//!
//! Gemini CLI 0.61 facts this relies on (reference/gemini-cli.md): a headless run in an untrusted
//! folder exits 55, so a folder the user trusts (see `trust.rs`) is trusted for the run
//! (`--skip-trust` and `GEMINI_CLI_TRUST_WORKSPACE`, which is also what loads hooks from
//! settings); `gemini` is two
//! processes and the parent ignores SIGTERM, so the group is signalled; API errors exit with the
//! HTTP status mod 256 (429 → 173); several failures print no `result` event at all, and a run
//! without one failed whatever its exit code; stdin is never used (a silent open pipe is waited
//! for), so it is /dev/null.
//!
//! Since 2026-06-18 Gemini CLI no longer serves personal Google accounts (free Code Assist for
//! individuals, Google AI Pro, Ultra: "Login with Google", `oauth-personal`); they are told to
//! move to the Antigravity CLI, which the harness does not drive. The refusal is the server's
//! reason for an `IneligibleTierError` thrown while the login is set up (`_doSetupUser` in
//! `@google/gemini-cli-core`), so its text is not in the 0.61 bundle; headless it reaches stderr
//! (`Error authenticating: IneligibleTierError: This client is no longer supported for Gemini
//! Code Assist for individuals. ...`, reason code `UNSUPPORTED_CLIENT`), is not a FatalError, and
//! so exits 1 through the CLI's catch-all, with no `result` event. An API key (AI Studio) and
//! Vertex AI still work: [`ErrorKind::PersonalLogin`] says so.
//!
//! The process mechanics (group, deadline, bounded reading) are `supervise.rs`'s; this file is
//! the Gemini CLI side of a run: its argv and environment, and what its exits mean.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::setup::Mode;
use super::stream::Transcript;
use super::supervise::{self, Limits};

/// What went wrong with a run, in terms of what the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No `gemini` program to start.
    NotInstalled,
    /// Exit 41: no usable login or API key.
    Auth,
    /// A personal Google login ("Login with Google": free, AI Pro, Ultra), which Gemini CLI has
    /// refused since 2026-06-18 (exit 1, `IneligibleTierError`, "no longer supported for Gemini
    /// Code Assist for individuals").
    PersonalLogin,
    /// Exit 42: bad input (empty prompt, bad session id).
    Input,
    /// Exit 52: a broken settings file, or YOLO refused by the admin.
    Config,
    /// Exit 53: the session hit `model.maxSessionTurns`.
    TurnLimit,
    /// Exit 55: the folder is not trusted.
    Untrusted,
    /// Exit 130: cancelled.
    Cancelled,
    /// A quota or rate limit (exit 173, or quota text in the result).
    Quota,
    /// Another HTTP error from the API (exit = status mod 256).
    Api,
    /// Exit 0 but `result.status` was `error`: an empty, blocked or invalid model response.
    Model,
    /// The run ended without a `result` event (crash, kill, a failure Gemini reports as text).
    NoResult,
    /// The harness's timeout ended it.
    Timeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::NotInstalled,
        ErrorKind::Auth,
        ErrorKind::PersonalLogin,
        ErrorKind::Input,
        ErrorKind::Config,
        ErrorKind::TurnLimit,
        ErrorKind::Untrusted,
        ErrorKind::Cancelled,
        ErrorKind::Quota,
        ErrorKind::Api,
        ErrorKind::Model,
        ErrorKind::NoResult,
        ErrorKind::Timeout,
    ];

    /// The kind stored as `as_str()` (in `runs.error_kind`).
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotInstalled => "not_installed",
            ErrorKind::Auth => "auth",
            ErrorKind::PersonalLogin => "personal_login",
            ErrorKind::Input => "input",
            ErrorKind::Config => "config",
            ErrorKind::TurnLimit => "turn_limit",
            ErrorKind::Untrusted => "untrusted",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Quota => "quota",
            ErrorKind::Api => "api",
            ErrorKind::Model => "model",
            ErrorKind::NoResult => "no_result",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// What the user can do.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorKind::NotInstalled => {
                "install Gemini CLI (npm install -g @google/gemini-cli) or set gemini.binary in \
                 the agent-harness config"
            }
            ErrorKind::Auth => {
                "set GEMINI_API_KEY (an AI Studio key) with security.auth.selectedType \
                 \"gemini-api-key\" in ~/.gemini/settings.json, or use Vertex AI; `harness doctor` \
                 says what is missing"
            }
            ErrorKind::PersonalLogin => PERSONAL_LOGIN_ADVICE,
            ErrorKind::Input => "the task was empty or malformed; rephrase it",
            ErrorKind::Config => {
                "Gemini CLI refused its settings: check ~/.gemini/settings.json and the \
                 project's .gemini/settings.json"
            }
            ErrorKind::TurnLimit => {
                "the run hit model.maxSessionTurns in Gemini's settings; raise it or split the task"
            }
            ErrorKind::Untrusted => {
                "neither Claude Code nor Gemini CLI trusts this folder; accept Claude Code's \
                 trust dialog here, or run `gemini` here once and trust it, or set \
                 gemini.trust_workspace to true in the harness config"
            }
            ErrorKind::Cancelled => "the run was cancelled",
            ErrorKind::Quota => "Gemini's quota is exhausted; wait for the reset or use Claude",
            ErrorKind::Api => "the Gemini API refused the request; see the message",
            ErrorKind::Model => {
                "the model returned an empty or blocked answer; try again or rephrase"
            }
            ErrorKind::NoResult => {
                "Gemini CLI stopped without a result; its stderr (below) says why"
            }
            ErrorKind::Timeout => {
                "the run took longer than gemini.timeout_secs and was stopped; split the task or raise the limit"
            }
        }
    }
}

/// What works instead of a personal Google login, in the words every report and `harness doctor`
/// use.
pub const PERSONAL_LOGIN_ADVICE: &str = "Gemini CLI no longer serves personal Google accounts \
     (Login with Google on a free, AI Pro or Ultra account: refused since 2026-06-18). What works: \
     an API key from AI Studio (free or paid): export GEMINI_API_KEY and set \
     security.auth.selectedType to \"gemini-api-key\" in ~/.gemini/settings.json; or Vertex AI: \
     GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION (or \
     GOOGLE_API_KEY), selectedType \"vertex-ai\"";

/// Text that marks Gemini's refusal of a personal Google login (server text, reason code, and
/// the pointer to Antigravity it carries).
pub fn is_personal_login_refusal(text: &str) -> bool {
    [
        "no longer supported for Gemini Code Assist for individuals",
        "UNSUPPORTED_CLIENT",
        "migrate to the Antigravity suite",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// One run to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The `gemini` program.
    pub binary: PathBuf,
    /// The whole prompt (`--prompt=`).
    pub prompt: String,
    pub cwd: PathBuf,
    /// Trust the folder for this run (`--skip-trust`); see [`super::trust`].
    pub trusted: bool,
    /// `GEMINI_CLI_HOME` for the run: a home whose settings carry the harness hooks
    /// ([`super::setup::hooks_home`]).
    pub gemini_home: Option<PathBuf>,
    /// `-m`; None lets Gemini CLI choose (its settings, else `auto`).
    pub model: Option<String>,
    pub mode: Mode,
    /// Gemini's `--session-id`: the run's identity in hooks and in the store.
    pub session_id: Option<String>,
    pub policy: Option<PathBuf>,
    pub timeout: Duration,
    /// How many bytes of the answer to keep (the end).
    pub text_cap: usize,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub transcript: Transcript,
    pub exit_code: Option<i32>,
    pub error: Option<(ErrorKind, String)>,
    /// The last few KiB of stderr.
    pub stderr_tail: String,
    pub duration: Duration,
    pub stdout_bytes: u64,
    /// A process that left the run's process group still held its stdout or stderr when the run
    /// ended; it was not waited for.
    pub pipes_left_open: bool,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// How much of stderr to keep.
const STDERR_TAIL: usize = 8 * 1024;
/// Grace between SIGTERM and SIGKILL at a timeout.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long the pipes are read after the run's process ended: what it wrote is in the pipe
/// buffer already, so this only bounds the wait for a stranger that holds them.
const DRAIN: Duration = Duration::from_secs(1);
/// The longest stream-json line folded: far above any event Gemini CLI 0.61 writes (message
/// deltas are small, a `write_file` call carries one file), and it bounds the worker's memory.
/// Longer lines are skipped and counted ([`Transcript::oversized_lines`]).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

/// Text that marks a quota failure in a result or in stderr.
pub fn is_quota_text(text: &str) -> bool {
    [
        "exceeded your current quota",
        "exhausted your daily quota",
        "exhausted your capacity",
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// Classifies an ended run.
pub fn classify(
    exit: Option<i32>,
    timed_out: bool,
    transcript: &Transcript,
    stderr: &str,
) -> Option<(ErrorKind, String)> {
    if timed_out {
        return Some((ErrorKind::Timeout, "timed out".into()));
    }
    let result_error = transcript
        .result
        .as_ref()
        .and_then(|(_, e, _)| e.as_ref())
        .map(|e| e.message.clone());
    let last_stderr = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    let message = result_error.clone().unwrap_or_else(|| last_stderr.clone());
    if transcript.succeeded() && exit == Some(0) {
        return None;
    }
    if is_personal_login_refusal(stderr)
        || result_error
            .as_deref()
            .is_some_and(is_personal_login_refusal)
    {
        let line = stderr
            .lines()
            .chain(result_error.as_deref().unwrap_or("").lines())
            .find(|l| is_personal_login_refusal(l))
            .unwrap_or(&message)
            .trim()
            .to_owned();
        return Some((ErrorKind::PersonalLogin, line));
    }
    let quota = exit == Some(173)
        || result_error.as_deref().is_some_and(is_quota_text)
        || (transcript.result.is_none() && is_quota_text(stderr));
    if quota {
        return Some((ErrorKind::Quota, message));
    }
    let kind = match exit {
        Some(41) => ErrorKind::Auth,
        Some(42) => ErrorKind::Input,
        Some(52) => ErrorKind::Config,
        Some(53) => ErrorKind::TurnLimit,
        Some(55) => ErrorKind::Untrusted,
        Some(130) => ErrorKind::Cancelled,
        Some(144 | 145 | 147 | 244 | 247) => ErrorKind::Api,
        Some(0) if transcript.result.is_some() => ErrorKind::Model,
        _ if transcript.result.is_none() => ErrorKind::NoResult,
        _ => ErrorKind::Api,
    };
    let message = if message.is_empty() {
        format!(
            "exit {}",
            exit.map_or("by signal".into(), |c| c.to_string())
        )
    } else {
        message
    };
    Some((kind, message))
}

/// Gemini's auth error names the settings file of the home it ran in ("Please set an Auth method
/// in your `<home>/.gemini/settings.json` ..."). A run's home is the harness's, made for the run and
/// removed after it: the user is pointed at their own Gemini home instead (`user_home`:
/// `$GEMINI_CLI_HOME`, else HOME; `~` when unknown).
pub fn unmask_run_home(message: &str, run_home: &Path, user_home: Option<&Path>) -> String {
    let run_home = run_home.to_string_lossy();
    let run_home = run_home.trim_end_matches('/');
    if run_home.is_empty() {
        return message.to_owned();
    }
    let user = user_home.map_or_else(|| "~".to_owned(), |h| h.to_string_lossy().into_owned());
    message.replace(run_home, user.trim_end_matches('/'))
}

/// Starts the run and waits for it (at most `spec.timeout`).
pub fn run(spec: &Spec) -> Outcome {
    let started = Instant::now();
    let mut cmd = Command::new(&spec.binary);
    // `--prompt=` and not `-p <text>`: Gemini's parser refuses a prompt that starts with `-`
    // after `-p` ("Not enough arguments following: p"), and a task may well start so.
    let mut prompt = std::ffi::OsString::from("--prompt=");
    prompt.push(&spec.prompt);
    cmd.arg(prompt)
        .args(["-o", "stream-json"])
        .args(["--approval-mode", spec.mode.approval_mode()]);
    if let Some(model) = &spec.model {
        cmd.args(["-m", model]);
    }
    if let Some(id) = &spec.session_id {
        cmd.args(["--session-id", id]);
    }
    if let Some(policy) = &spec.policy {
        cmd.arg("--policy").arg(policy);
    }
    if spec.trusted {
        // The flag alone does not load settings hooks in 0.61; the variable does (and reaches the
        // run's own hooks and shells).
        cmd.arg("--skip-trust")
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true");
    }
    if let Some(home) = &spec.gemini_home {
        cmd.env("GEMINI_CLI_HOME", home);
    }
    cmd.current_dir(&spec.cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotInstalled
            } else {
                ErrorKind::NoResult
            };
            return Outcome {
                transcript: Transcript::default(),
                exit_code: None,
                error: Some((kind, format!("cannot start {}: {e}", spec.binary.display()))),
                stderr_tail: String::new(),
                duration: started.elapsed(),
                stdout_bytes: 0,
                pipes_left_open: false,
            };
        }
    };
    let limits = Limits {
        timeout: spec.timeout.saturating_sub(started.elapsed()),
        kill_grace: KILL_GRACE,
        drain: DRAIN,
        max_line: MAX_LINE,
        stderr_tail: STDERR_TAIL,
    };
    let mut transcript = Transcript::with_cap(spec.text_cap);
    let ended = supervise::supervise(child, limits, &mut |line| transcript.push_line(line));
    transcript.oversized_lines = ended.oversized_lines;
    let exit_code = ended.status.and_then(|s| s.code());
    let mut error = classify(exit_code, ended.timed_out, &transcript, &ended.stderr_tail);
    if let (Some((ErrorKind::Auth, message)), Some(run_home)) = (&mut error, &spec.gemini_home) {
        *message = unmask_run_home(message, run_home, crate::paths::gemini_home().as_deref());
    }
    Outcome {
        transcript,
        exit_code,
        error,
        stderr_tail: ended.stderr_tail,
        duration: started.elapsed(),
        stdout_bytes: ended.stdout_bytes,
        pipes_left_open: ended.pipes_left_open,
    }
}

/// The `gemini` program: the configured one, else the one on PATH.
pub fn find(configured: Option<&Path>) -> Option<PathBuf> {
    match configured {
        Some(p) => Some(p.to_path_buf()),
        None => which::which("gemini").ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(lines: &str) -> Transcript {
        let mut t = Transcript::default();
        for l in lines.lines() {
            t.push_line(l.as_bytes());
        }
        t
    }

    #[test]
    fn an_auth_error_names_the_users_gemini_settings_not_the_runs_home() {
        let run_home = Path::new("/s/agent-harness/gemini/home-gr-1");
        let msg = "Please set an Auth method in your /s/agent-harness/gemini/home-gr-1/.gemini/\
                   settings.json or specify one of the following environment variables";
        let shown = unmask_run_home(msg, run_home, Some(Path::new("/home/u")));
        assert_eq!(
            shown,
            "Please set an Auth method in your /home/u/.gemini/settings.json or specify one of \
             the following environment variables"
        );
        assert!(unmask_run_home(msg, run_home, None).contains("in your ~/.gemini/settings.json"));
        assert_eq!(unmask_run_home("other", run_home, None), "other");
    }

    #[test]
    fn exits_classify_into_what_the_user_can_do() {
        let ok = fold(r#"{"type":"result","status":"success","stats":{}}"#);
        let model_error = fold(r#"{"type":"result","status":"error","stats":{}}"#);
        let quota = fold(
            r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: You have exhausted your daily quota on this model.]"}}"#,
        );
        let none = Transcript::default();
        type Case<'a> = (
            Option<i32>,
            bool,
            &'a Transcript,
            &'a str,
            Option<ErrorKind>,
        );
        let cases: &[Case] = &[
            (Some(0), false, &ok, "", None),
            (Some(0), false, &model_error, "", Some(ErrorKind::Model)),
            (Some(173), false, &quota, "", Some(ErrorKind::Quota)),
            (Some(1), false, &quota, "", Some(ErrorKind::Quota)),
            (
                Some(41),
                false,
                &none,
                "Please set an Auth method",
                Some(ErrorKind::Auth),
            ),
            (
                Some(55),
                false,
                &none,
                "untrusted",
                Some(ErrorKind::Untrusted),
            ),
            (
                Some(52),
                false,
                &none,
                "Error in settings.json",
                Some(ErrorKind::Config),
            ),
            (
                Some(53),
                false,
                &fold(
                    r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max session turns"}}"#,
                ),
                "",
                Some(ErrorKind::TurnLimit),
            ),
            (
                Some(244),
                false,
                &fold(
                    r#"{"type":"result","status":"error","error":{"message":"[API Error: 500]"}}"#,
                ),
                "",
                Some(ErrorKind::Api),
            ),
            // SIGTERM to the group exits 0 without a result: still a failure.
            (Some(0), false, &none, "", Some(ErrorKind::NoResult)),
            (None, false, &none, "", Some(ErrorKind::NoResult)),
            (None, true, &none, "", Some(ErrorKind::Timeout)),
        ];
        for (exit, timed_out, t, stderr, want) in cases {
            let got = classify(*exit, *timed_out, t, stderr).map(|(k, _)| k);
            assert_eq!(got, *want, "exit {exit:?} stderr {stderr:?}");
        }
        // A personal Google login, as 0.61 reports the refusal headless.
        let refusal = "Error authenticating: IneligibleTierError: This client is no longer \
             supported for Gemini Code Assist for individuals. To continue using Gemini, please \
             migrate to the Antigravity suite of products: https://antigravity.google\n  \
             ineligibleTiers: [ { reasonCode: 'UNSUPPORTED_CLIENT' } ]\nAn unexpected critical \
             error occurred:IneligibleTierError: This client is no longer supported\n    at \
             throwIneligibleOrProjectIdError (chunk.js:1:1)";
        let (kind, msg) = classify(Some(1), false, &none, refusal).unwrap();
        assert_eq!(kind, ErrorKind::PersonalLogin);
        assert!(
            msg.starts_with("Error authenticating: IneligibleTierError: This client"),
            "{msg}"
        );
        assert!(ErrorKind::PersonalLogin.advice().contains("GEMINI_API_KEY"));
        assert!(
            ErrorKind::PersonalLogin
                .advice()
                .contains("GOOGLE_GENAI_USE_VERTEXAI")
        );
        assert_eq!(
            ErrorKind::parse("personal_login"),
            Some(ErrorKind::PersonalLogin)
        );
        let (_, msg) = classify(
            Some(41),
            false,
            &none,
            "noise\nPlease set an Auth method\n\n",
        )
        .unwrap();
        assert_eq!(msg, "Please set an Auth method");
    }
}
