//! Domain events: a hook payload reduced to what the harness acts on.
//!
//! Owns the mapping from both clients' vocabularies (Claude Code's `PreToolUse`/`Write`, Gemini
//! CLI's `BeforeTool`/`write_file`) to one set of kinds and tool classes, and the file a tool call
//! touches as a canonical path. A well-formed event the harness does not know is `Kind::Other`:
//! recorded, never acted on. Must not touch the store or decide anything.

use std::path::PathBuf;

use crate::paths;
use crate::payload::HookPayload;

/// Which client an agent runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Claude,
    Gemini,
}

impl Agent {
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Gemini => "gemini",
        }
    }
}

/// What happened, in one vocabulary for both clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Claude SessionStart, Gemini SessionStart.
    SessionStart,
    /// Claude UserPromptSubmit, Gemini BeforeAgent.
    PromptSubmit,
    /// Claude UserPromptExpansion (a slash command or MCP prompt about to expand).
    PromptExpansion,
    /// Claude PreToolUse, Gemini BeforeTool.
    PreTool,
    /// Claude PostToolUse, Gemini AfterTool.
    PostTool,
    /// Claude PostToolUseFailure (a failed tool, including a Bash command that exits non-zero).
    PostToolFailure,
    /// Claude Stop, Gemini AfterAgent.
    Stop,
    /// Claude StopFailure: the turn ended on an API error (`error` says which).
    StopFailure,
    /// Claude SubagentStart.
    SubagentStart,
    /// Claude SubagentStop.
    SubagentStop,
    /// Claude PreCompact, Gemini PreCompress.
    PreCompact,
    /// Claude PostCompact.
    PostCompact,
    /// Claude Notification, Gemini Notification.
    Notification,
    /// Claude SessionEnd, Gemini SessionEnd.
    SessionEnd,
    /// Claude PreSkillShellCommand (2.1.332 on): a slash command's or skill's `!` shell step is
    /// about to run; `tool_name` is the shell tool (`Bash`, `PowerShell`), `tool_input.command`
    /// the command as it will run. Checked like PreToolUse(Bash); never followed by a Post event.
    PreShellStep,
    /// Claude PreModelSwitch / PostModelSwitch (2.1.332 on): `from_model` -> `to_model`.
    ModelSwitch,
    /// Claude DirectoryAdded (2.1.332 on): `directory` became a project root of the session.
    DirectoryAdded,
    /// Claude PermissionRequest: the user is asked whether a tool may run.
    PermissionRequest,
    /// Claude PermissionDenied: a tool call was refused (by the user or a rule); it never ran.
    PermissionDenied,
    /// Any other event (Claude's CwdChanged, ...; Gemini's BeforeModel, ...).
    Other,
}

impl Kind {
    fn of(name: &str) -> (Kind, Option<Agent>) {
        use Agent::Gemini;
        match name {
            "SessionStart" => (Kind::SessionStart, None),
            "SessionEnd" => (Kind::SessionEnd, None),
            "Notification" => (Kind::Notification, None),
            "UserPromptSubmit" => (Kind::PromptSubmit, Some(Agent::Claude)),
            "UserPromptExpansion" => (Kind::PromptExpansion, Some(Agent::Claude)),
            "PreToolUse" => (Kind::PreTool, Some(Agent::Claude)),
            "PostToolUse" => (Kind::PostTool, Some(Agent::Claude)),
            "PostToolUseFailure" => (Kind::PostToolFailure, Some(Agent::Claude)),
            "Stop" => (Kind::Stop, Some(Agent::Claude)),
            "StopFailure" => (Kind::StopFailure, Some(Agent::Claude)),
            "SubagentStart" => (Kind::SubagentStart, Some(Agent::Claude)),
            "SubagentStop" => (Kind::SubagentStop, Some(Agent::Claude)),
            "PreCompact" => (Kind::PreCompact, Some(Agent::Claude)),
            "PostCompact" => (Kind::PostCompact, Some(Agent::Claude)),
            "PreSkillShellCommand" => (Kind::PreShellStep, Some(Agent::Claude)),
            "PreModelSwitch" | "PostModelSwitch" => (Kind::ModelSwitch, Some(Agent::Claude)),
            "DirectoryAdded" => (Kind::DirectoryAdded, Some(Agent::Claude)),
            "PermissionRequest" => (Kind::PermissionRequest, Some(Agent::Claude)),
            "PermissionDenied" => (Kind::PermissionDenied, Some(Agent::Claude)),
            "BeforeTool" => (Kind::PreTool, Some(Gemini)),
            "AfterTool" => (Kind::PostTool, Some(Gemini)),
            "BeforeAgent" => (Kind::PromptSubmit, Some(Gemini)),
            "AfterAgent" => (Kind::Stop, Some(Gemini)),
            "PreCompress" => (Kind::PreCompact, Some(Gemini)),
            "BeforeModel" | "AfterModel" | "BeforeToolSelection" => (Kind::Other, Some(Gemini)),
            _ => (Kind::Other, None),
        }
    }
}

/// What a tool does, as far as the harness cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolClass {
    /// Writes one file named in its input: Write, Edit, MultiEdit, NotebookEdit; write_file, replace.
    FileWrite,
    /// Reads one file named in its input: Read; read_file.
    FileRead,
    /// Runs a shell command: Bash; run_shell_command.
    Shell,
    /// Starts a subagent: Agent (formerly Task); invoke_agent.
    Subagent,
    /// Anything else (Glob, Grep, WebFetch, MCP tools, ...).
    Other,
}

impl ToolClass {
    pub fn of(tool_name: &str) -> ToolClass {
        match tool_name {
            "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "write_file" | "replace" => {
                ToolClass::FileWrite
            }
            "Read" | "read_file" => ToolClass::FileRead,
            "Bash" | "run_shell_command" => ToolClass::Shell,
            "Agent" | "Task" | "invoke_agent" => ToolClass::Subagent,
            _ => ToolClass::Other,
        }
    }
}

/// One tool call as the harness sees it.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub name: &'a str,
    pub class: ToolClass,
    /// Joins a PreToolUse to its PostToolUse: Claude's `tool_use_id`; for Gemini, which sends no
    /// id, the tool name and a hash of its input (BeforeTool and AfterTool carry the same input).
    pub call_key: String,
    /// The file the call reads or writes, canonical (absolute, `..` and symlinks resolved), found
    /// the way the client that made the call finds it ([`path_rules`]).
    pub file: Option<PathBuf>,
}

/// A hook payload, reduced.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub payload: HookPayload<'a>,
    pub agent: Agent,
    pub kind: Kind,
    pub tool: Option<ToolCall<'a>>,
    /// A prompt the client made up, not the user: Claude Code (2.1.332 on) submits a
    /// `<task-notification>` prompt when a background agent finishes. It is recorded, but it is
    /// not "what the user asked" (briefs, quota advice, routing leave it out).
    pub synthetic_prompt: bool,
}

/// How a prompt the client submits on its own begins (see [`Event::synthetic_prompt`]).
pub const TASK_NOTIFICATION_PREFIX: &str = "<task-notification>";

/// True for a prompt the client made up rather than the user typed.
pub fn is_synthetic_prompt(prompt: &str) -> bool {
    prompt.trim_start().starts_with(TASK_NOTIFICATION_PREFIX)
}

impl<'a> Event<'a> {
    pub fn reduce(payload: HookPayload<'a>) -> Event<'a> {
        let (kind, agent_by_name) = Kind::of(payload.hook_event_name);
        // Gemini CLI stamps every payload with `timestamp`; Claude Code never does.
        let agent = agent_by_name.unwrap_or(if payload.timestamp.is_some() {
            Agent::Gemini
        } else {
            Agent::Claude
        });
        let tool = payload.tool_name.map(|name| {
            let class = ToolClass::of(name);
            let call_key = match payload.tool_use_id {
                Some(id) => id.to_owned(),
                None => synthetic_call_key(name, payload.tool_input),
            };
            let file = file_argument(&payload, name)
                .map(|p| paths::tool_file(path_rules(agent, name), payload.cwd, p));
            ToolCall {
                name,
                class,
                call_key,
                file,
            }
        });
        let synthetic_prompt = kind == Kind::PromptSubmit
            && agent == Agent::Claude
            && payload.prompt.is_some_and(is_synthetic_prompt);
        Event {
            payload,
            agent,
            kind,
            tool,
            synthetic_prompt,
        }
    }

    pub fn session_id(&self) -> Option<&'a str> {
        self.payload.session_id
    }
}

/// Whose rules turn `tool_name`'s path argument into a file: the client's that defines the tool
/// (its names are the client's own), else the one `agent` runs in, else the kernel's.
pub fn path_rules(agent: Agent, tool_name: &str) -> paths::Rules {
    match tool_name {
        "replace" => paths::Rules::GeminiReplace,
        "write_file" | "read_file" => paths::Rules::GeminiWriteFile,
        "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "Read" => paths::Rules::Claude,
        _ => match agent {
            Agent::Claude => paths::Rules::Claude,
            Agent::Gemini => paths::Rules::Kernel,
        },
    }
}

/// The path argument of a tool that names one file.
fn file_argument<'a>(payload: &HookPayload<'a>, tool_name: &str) -> Option<&'a str> {
    let key = match tool_name {
        "NotebookEdit" => "notebook_path",
        _ if matches!(
            ToolClass::of(tool_name),
            ToolClass::FileWrite | ToolClass::FileRead
        ) =>
        {
            "file_path"
        }
        _ => return None,
    };
    payload.tool_arg(key).filter(|p| !p.is_empty())
}

fn synthetic_call_key(tool_name: &str, input: Option<&serde_json::Value>) -> String {
    let text = input.map(|v| v.to_string()).unwrap_or_default();
    // FNV-1a: stable across processes and releases, unlike std's randomly seeded hasher.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{tool_name}#{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reduce(v: &serde_json::Value) -> Event<'_> {
        Event::reduce(HookPayload::view(v).unwrap())
    }

    #[test]
    fn names_map_to_kinds_and_agents() {
        let cases = [
            (
                json!({"hook_event_name":"PreToolUse"}),
                Kind::PreTool,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"BeforeTool"}),
                Kind::PreTool,
                Agent::Gemini,
            ),
            (
                json!({"hook_event_name":"AfterAgent"}),
                Kind::Stop,
                Agent::Gemini,
            ),
            (
                json!({"hook_event_name":"SessionStart","timestamp":"2026-11-21T10:36:31.563Z"}),
                Kind::SessionStart,
                Agent::Gemini,
            ),
            (
                json!({"hook_event_name":"SessionStart"}),
                Kind::SessionStart,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"PreSkillShellCommand"}),
                Kind::PreShellStep,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"PostModelSwitch"}),
                Kind::ModelSwitch,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"PermissionDenied"}),
                Kind::PermissionDenied,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"CwdChanged"}),
                Kind::Other,
                Agent::Claude,
            ),
            (
                json!({"hook_event_name":"BeforeModel"}),
                Kind::Other,
                Agent::Gemini,
            ),
        ];
        for (payload, kind, agent) in &cases {
            let e = reduce(payload);
            assert_eq!((e.kind, e.agent), (*kind, *agent), "{payload}");
        }
    }

    #[test]
    fn tool_file_is_absolute_and_keyed() {
        let v = json!({"hook_event_name":"BeforeTool","cwd":"/nonexistent/ws","timestamp":"t",
                       "tool_name":"replace","tool_input":{"file_path":"src/../README.md"}});
        let e = reduce(&v);
        let tool = e.tool.unwrap();
        assert_eq!(tool.class, ToolClass::FileWrite);
        assert_eq!(
            tool.file.unwrap(),
            PathBuf::from("/nonexistent/ws/README.md")
        );
        assert!(tool.call_key.starts_with("replace#"));

        let v = json!({"hook_event_name":"PreToolUse","cwd":"/p","tool_name":"NotebookEdit",
                       "tool_use_id":"toolu_1","tool_input":{"notebook_path":"/p/a.ipynb"}});
        let tool = reduce(&v).tool.unwrap();
        assert_eq!(tool.call_key, "toolu_1");
        assert_eq!(tool.file.unwrap(), PathBuf::from("/p/a.ipynb"));

        let v = json!({"hook_event_name":"PreToolUse","tool_name":"Bash",
                       "tool_input":{"command":"ls"}});
        assert!(reduce(&v).tool.unwrap().file.is_none());
    }

    #[test]
    fn the_tool_name_chooses_whose_path_rules_apply() {
        use paths::Rules;
        assert_eq!(path_rules(Agent::Gemini, "replace"), Rules::GeminiReplace);
        assert_eq!(
            path_rules(Agent::Gemini, "write_file"),
            Rules::GeminiWriteFile
        );
        assert_eq!(path_rules(Agent::Claude, "Write"), Rules::Claude);
        assert_eq!(path_rules(Agent::Claude, "NotebookEdit"), Rules::Claude);
        // An `@` the model put before a Gemini path is not part of the file's name.
        let v = json!({"hook_event_name":"BeforeTool","cwd":"/nonexistent/ws","timestamp":"t",
                       "tool_name":"write_file","tool_input":{"file_path":"@src/a%2Ers\0"}});
        assert_eq!(
            reduce(&v).tool.unwrap().file.unwrap(),
            PathBuf::from("/nonexistent/ws/src/a.rs")
        );
    }

    #[test]
    fn a_task_notification_prompt_is_synthetic_and_a_typed_one_is_not() {
        let v = json!({"hook_event_name":"UserPromptSubmit","session_id":"s",
                       "prompt":"<task-notification>\n<task-id>a1</task-id>\n</task-notification>"});
        assert!(reduce(&v).synthetic_prompt);
        let v = json!({"hook_event_name":"UserPromptSubmit","session_id":"s",
                       "prompt":"explain <task-notification> tags"});
        assert!(!reduce(&v).synthetic_prompt);
        let v = json!({"hook_event_name":"BeforeAgent","timestamp":"t",
                       "prompt":"<task-notification>"});
        assert!(
            !reduce(&v).synthetic_prompt,
            "only Claude Code makes them up"
        );
    }

    #[test]
    fn gemini_before_and_after_share_a_call_key() {
        let input = json!({"file_path":"out.txt","content":"hello\n"});
        let before = json!({"hook_event_name":"BeforeTool","timestamp":"t","tool_name":"write_file","tool_input":input});
        let after = json!({"hook_event_name":"AfterTool","timestamp":"t","tool_name":"write_file","tool_input":input,
                           "tool_response":{"llmContent":"ok"}});
        assert_eq!(
            reduce(&before).tool.unwrap().call_key,
            reduce(&after).tool.unwrap().call_key
        );
    }
}
