//! The brief a Gemini run gets with its task, so that it builds on the requesting session's work
//! instead of starting cold: that session's recent prompts, the files it edited, the files agents
//! are editing now, and what the run may and may not do. Bounded to [`MAX_BRIEF`] characters.

use rusqlite::{Connection, Result};
use serde_json::Value;

use super::Mode;
use crate::text::clip;

/// The longest brief, in characters.
pub const MAX_BRIEF: usize = 4000;

/// Builds the brief for a run in `cwd` asked for by `requester`.
pub fn brief(
    conn: &Connection,
    requester: Option<&str>,
    cwd: &str,
    mode: Mode,
    now_ms: i64,
) -> Result<String> {
    let mut out = String::from(
        "---\nContext from agent-harness: you are helping a Claude Code session that works in \
         the same project. Use this context; do not repeat it back.\n",
    );
    out.push_str(&format!("- Working directory: {cwd}\n"));
    if let Some(session) = requester {
        let prompts: Vec<String> = conn
            .prepare(
                "SELECT payload FROM events WHERE session_id = ?1 \
                 AND event IN ('UserPromptSubmit', 'BeforeAgent') \
                 AND ltrim(coalesce(json_extract(payload, '$.prompt'), '')) \
                     NOT LIKE '<task-notification>%' ORDER BY id DESC LIMIT 5",
            )?
            .query_map([session], |r| r.get::<_, String>(0))?
            .filter_map(|p| p.ok())
            .filter_map(|p| serde_json::from_str::<Value>(&p).ok())
            .filter_map(|v| v["prompt"].as_str().map(|s| clip(s, 240)))
            .filter(|p| !p.starts_with("/delegate-gemini"))
            // Claude Code's own reports of background agents are not what the user asked.
            .filter(|p| !crate::event::is_synthetic_prompt(p))
            .collect();
        if !prompts.is_empty() {
            out.push_str("- What the user asked that session recently (newest first):\n");
            for p in prompts {
                out.push_str(&format!("  - \"{p}\"\n"));
            }
        }
        let edited: Vec<String> = conn
            .prepare(
                "SELECT file_path, max(coalesce(finished_ms, started_ms)) AS t FROM tool_calls \
                 WHERE session_id = ?1 AND file_path IS NOT NULL AND tool_name IN \
                 ('Write', 'Edit', 'MultiEdit', 'NotebookEdit', 'write_file', 'replace') \
                 GROUP BY file_path ORDER BY t DESC LIMIT 15",
            )?
            .query_map([session], |r| r.get::<_, String>(0))?
            .collect::<Result<_>>()?;
        if !edited.is_empty() {
            out.push_str(&format!(
                "- Files that session edited: {}\n",
                edited.join(", ")
            ));
        }
    }
    // This project's claims only: other projects' files are neither Gemini's business nor
    // anyone's to send it.
    let root = crate::paths::project_root(std::path::Path::new(cwd))
        .map_or_else(|| cwd.to_owned(), |r| r.to_string_lossy().into_owned());
    let held: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT path, session_id, agent FROM claims WHERE expires_ms > ?1 \
             AND (project_root = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/') \
             ORDER BY touched_ms DESC LIMIT 20",
        )?
        .query_map(rusqlite::params![now_ms, root], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_>>()?;
    if !held.is_empty() {
        let list: Vec<String> = held
            .iter()
            .map(|(p, s, a)| format!("{p} ({a} {})", s.get(..8).unwrap_or(s)))
            .collect();
        out.push_str(&format!(
            "- Files agents are editing now (writes to them will be refused): {}\n",
            list.join(", ")
        ));
    }
    // The project's memory (shared by every session and both providers): notes, what other
    // sessions did last, findings still open.
    let memory = crate::store::memory::project_state(conn, &root, requester.unwrap_or(""), || {
        Ok(Vec::new())
    })?
    .unwrap_or_default();
    for n in memory.notes.iter().take(3) {
        out.push_str(&format!("- Note kept for this project: {}\n", clip(n, 300)));
    }
    for s in memory.sessions.iter().take(2) {
        out.push_str(&format!(
            "- Another {} session here ({}) last did: {}\n",
            s.agent,
            crate::memory::ago(now_ms, s.last_ms),
            clip(&s.latest, 300)
        ));
    }
    for f in memory.findings.iter().take(3) {
        out.push_str(&format!(
            "- Open review finding: {}{}\n",
            f.file
                .as_deref()
                .map_or(String::new(), |f| format!("{f}: ")),
            clip(&f.problem, 200)
        ));
    }
    out.push_str(match mode {
        Mode::ReadOnly => {
            "- This run is read-only: you can read and search files but not edit them or run \
             commands. Answer in text; be specific (paths, line numbers, names).\n"
        }
        Mode::Write => {
            "- You may edit files in this workspace but not run shell commands. Say which files \
             you changed and why.\n"
        }
    });
    if out.chars().count() > MAX_BRIEF {
        out = out.chars().take(MAX_BRIEF - 1).collect::<String>() + "…\n";
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::claims::{self, Claim};

    /// A fresh temp dir holding a git project and a store: (dir, the project's path, the store).
    fn project(name: &str) -> (std::path::PathBuf, String, Store) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let project = dir.join("proj");
        std::fs::create_dir_all(project.join(".git")).unwrap();
        let project = std::fs::canonicalize(&project).unwrap();
        let p = project.to_string_lossy().into_owned();
        let store = Store::open(&dir.join("h.db"), std::time::Duration::from_secs(1)).unwrap();
        (dir, p, store)
    }

    #[test]
    fn the_brief_names_this_projects_held_files_only() {
        let (dir, p, mut store) = project("ah-brief");
        let text = store
            .write(|tx| {
                let claim = |path: String, root: Option<String>| Claim {
                    path,
                    session_id: "aaaaaaaa-1".into(),
                    agent: "claude".into(),
                    project_root: root,
                    tool_name: Some("Edit".into()),
                    claimed_ms: 1,
                    touched_ms: 1,
                    expires_ms: i64::MAX,
                };
                claims::put(tx, &claim(format!("{p}/src/a.rs"), Some(p.clone()))).unwrap();
                claims::put(tx, &claim(format!("{p}/b.rs"), None)).unwrap();
                claims::put(tx, &claim(format!("{p}-other/c.rs"), None)).unwrap();
                claims::put(
                    tx,
                    &claim("/elsewhere/d.rs".into(), Some("/elsewhere".into())),
                )
                .unwrap();
                Ok(brief(tx, None, &format!("{p}/src"), Mode::ReadOnly, 2).unwrap())
            })
            .unwrap();
        assert!(
            text.contains("src/a.rs") && text.contains("/b.rs"),
            "{text}"
        );
        assert!(!text.contains("c.rs") && !text.contains("d.rs"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_brief_carries_the_projects_memory() {
        let (dir, p, mut store) = project("ah-brief-mem");
        let text = store
            .write(|tx| {
                use crate::store::memory::add;
                add(tx, "note", None, "user", &p, 1, "dates are UTC everywhere").unwrap();
                add(
                    tx,
                    "turn",
                    Some("gem-1"),
                    "gemini",
                    &p,
                    1,
                    "asked: map the parser",
                )
                .unwrap();
                add(
                    tx,
                    "turn",
                    Some("asker"),
                    "claude",
                    &p,
                    1,
                    "asked: my own work",
                )
                .unwrap();
                add(tx, "note", None, "user", "/other", 1, "not this project").unwrap();
                Ok(brief(tx, Some("asker"), &p, Mode::ReadOnly, 2).unwrap())
            })
            .unwrap();
        assert!(
            text.contains("Note kept for this project: dates are UTC"),
            "{text}"
        );
        assert!(text.contains("Another gemini session here"), "{text}");
        assert!(text.contains("map the parser"), "{text}");
        assert!(
            !text.contains("my own work") && !text.contains("not this project"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
