//! The memory table and its full-text index (migration 9): adding, forgetting, listing and
//! searching what is remembered, and loading the state a hand-back is rendered from
//! (`crate::memory`). Every query a hook runs is bounded (LIMIT, or a scan of a bounded
//! sub-select). The FTS5 index holds no copy of the text (external content): every insert and
//! delete here updates both, in the caller's transaction.

use rusqlite::{Connection, OptionalExtension, Result, params};

use crate::memory::{self, Item, OpenFinding, PastSession, PendingRun, ProjectState, SessionState};

/// Rows of a project a hand-back looks at, newest first.
const RECENT_ROWS: i64 = 200;
/// Events of a session read back to find the turn's prompt and edits at Stop.
const TURN_EVENTS: i64 = 500;

const WRITE_TOOLS: &str = write_tools_sql!();

/// The session's latest events, newest first, for the turn so far (`turn_so_far`).
pub const TURN_SO_FAR_SQL: &str = concat!(
    "SELECT event, file_path, tool_name IN ",
    write_tools_sql!(),
    ", CASE WHEN event IN ('UserPromptSubmit', 'BeforeAgent') AND json_valid(payload) \
     THEN substr(json_extract(payload, '$.prompt'), 1, 4000) END \
     FROM events WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2"
);

/// An item, and its text in the search index (`add`).
pub const ADD_SQL: &str = "INSERT INTO memory (kind, session_id, agent, project, created_ms, \
     text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub const ADD_FTS_SQL: &str = "INSERT INTO memory_fts (rowid, text) VALUES (?1, ?2)";

/// The project key of a directory: its project root, else itself.
pub fn project_of(project_root: Option<&str>, cwd: Option<&str>) -> String {
    project_root.or(cwd).unwrap_or("").to_owned()
}

/// Remembers `text` (already cleaned: see `memory::clean`). Returns its id.
pub fn add(
    conn: &Connection,
    kind: &str,
    session_id: Option<&str>,
    agent: &str,
    project: &str,
    now_ms: i64,
    text: &str,
) -> Result<i64> {
    conn.prepare_cached(ADD_SQL)?
        .execute(params![kind, session_id, agent, project, now_ms, text])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(ADD_FTS_SQL)?
        .execute(params![id, text])?;
    Ok(id)
}

/// Forgets one item. Returns whether it existed.
pub fn forget(conn: &Connection, id: i64) -> Result<bool> {
    let text: Option<String> = conn
        .query_row("SELECT text FROM memory WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(text) = text else {
        return Ok(false);
    };
    // An external-content index forgets a row only when told its old text.
    conn.execute(
        "INSERT INTO memory_fts (memory_fts, rowid, text) VALUES ('delete', ?1, ?2)",
        params![id, text],
    )?;
    conn.execute("DELETE FROM memory WHERE id = ?1", [id])?;
    forget_briefs(conn)?;
    Ok(true)
}

/// Forgets everything of one session. Returns how many items.
pub fn forget_session(conn: &Connection, session_id: &str) -> Result<usize> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM memory WHERE session_id = ?1")?
        .query_map([session_id], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for id in &ids {
        forget(conn, *id)?;
    }
    Ok(ids.len())
}

fn item(r: &rusqlite::Row<'_>) -> Result<Item> {
    Ok(Item {
        id: r.get(0)?,
        kind: r.get(1)?,
        session_id: r.get(2)?,
        agent: r.get(3)?,
        project: r.get(4)?,
        created_ms: r.get(5)?,
        text: r.get(6)?,
    })
}

/// Which items a listing or search keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub project: Option<&'a str>,
    /// A whole session id or a prefix of one.
    pub session: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub kind: Option<&'a str>,
}

const FILTER: &str = "(?1 IS NULL OR m.project = ?1) \
     AND (?2 IS NULL OR substr(m.session_id, 1, length(?2)) = ?2) \
     AND (?3 IS NULL OR m.agent = ?3) AND (?4 IS NULL OR m.kind = ?4)";

/// The newest items, newest first.
pub fn list(conn: &Connection, f: &Filter<'_>, limit: usize) -> Result<Vec<Item>> {
    conn.prepare(&format!(
        "SELECT m.id, m.kind, m.session_id, m.agent, m.project, m.created_ms, m.text \
         FROM memory m WHERE {FILTER} ORDER BY m.id DESC LIMIT ?5"
    ))?
    .query_map(
        params![f.project, f.session, f.agent, f.kind, limit as i64],
        item,
    )?
    .collect()
}

/// Items matching `words` (a person's words, see `memory::fts_query`), best first, with their
/// BM25 rank (lower is better). Ties go to the newer item.
pub fn search(
    conn: &Connection,
    words: &str,
    f: &Filter<'_>,
    limit: usize,
) -> Result<Vec<(Item, f64)>> {
    let Some(query) = memory::fts_query(words, 16, true) else {
        return Ok(Vec::new());
    };
    // Not for hooks: a common word's postings over a large store make this slow (see
    // `newest`).
    conn.prepare_cached(&format!(
        "SELECT m.id, m.kind, m.session_id, m.agent, m.project, m.created_ms, m.text, \
         bm25(memory_fts) AS score FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid \
         WHERE memory_fts MATCH ?6 AND {FILTER} \
         ORDER BY score, m.id DESC LIMIT ?5"
    ))?
    .query_map(
        params![f.project, f.session, f.agent, f.kind, limit as i64, query],
        |r| Ok((item(r)?, r.get(7)?)),
    )?
    .collect()
}

/// A project's newest `n` items, newest first: what a hook ranks against a prompt
/// (`memory::rank`), bounded however much is stored.
pub fn newest(conn: &Connection, project: &str, n: usize) -> Result<Vec<Item>> {
    conn.prepare_cached(
        "SELECT id, kind, session_id, agent, project, created_ms, text FROM memory \
         WHERE project = ?1 ORDER BY id DESC LIMIT ?2",
    )?
    .query_map(params![project, n as i64], item)?
    .collect()
}

/// The session's newest snapshot, if any.
pub fn latest_snapshot(
    conn: &Connection,
    project: &str,
    session_id: &str,
) -> Result<Option<String>> {
    conn.prepare_cached(
        "SELECT text FROM (SELECT session_id, kind, text FROM memory WHERE project = ?1 \
         ORDER BY id DESC LIMIT ?3) WHERE session_id = ?2 AND kind = 'snapshot' LIMIT 1",
    )?
    .query_row(params![project, session_id, RECENT_ROWS], |r| r.get(0))
    .optional()
}

/// What the turn that just ended did, from the session's newest events (bounded): the prompt
/// that started it and the files written since.
pub fn turn_so_far(conn: &Connection, session_id: &str) -> Result<(Option<String>, Vec<String>)> {
    let mut stmt = conn.prepare_cached(TURN_SO_FAR_SQL)?;
    let mut rows = stmt.query(params![session_id, TURN_EVENTS])?;
    let mut files: Vec<String> = Vec::new();
    while let Some(r) = rows.next()? {
        let event: String = r.get(0)?;
        match event.as_str() {
            "UserPromptSubmit" | "BeforeAgent" => {
                let prompt: Option<String> = r.get(3)?;
                if let Some(p) = prompt.filter(|p| !crate::event::is_synthetic_prompt(p)) {
                    files.reverse();
                    return Ok((Some(p), files));
                }
            }
            "PostToolUse" | "AfterTool" => {
                let file: Option<String> = r.get(1)?;
                let writes: bool = r.get::<_, Option<bool>>(2)?.unwrap_or(false);
                if let Some(f) = file.filter(|_| writes)
                    && !files.contains(&f)
                {
                    files.push(f);
                }
            }
            _ => {}
        }
    }
    files.reverse();
    Ok((None, files))
}

/// The open findings a review's JSON lists (at most 10).
fn parse_findings(review_id: i64, findings: Option<String>) -> Vec<OpenFinding> {
    let list: Vec<crate::policy::review_gate::Finding> = findings
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    list.into_iter()
        .take(10)
        .map(|f| OpenFinding {
            review_id,
            file: Some(f.file).filter(|f| !f.is_empty()),
            line: f.line.map(|l| l as i64),
            severity: Some(f.severity).filter(|s| !s.is_empty()),
            problem: f.problem,
        })
        .collect()
}

fn open_findings(
    conn: &Connection,
    review_ids_sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<OpenFinding>> {
    let rows: Vec<(i64, Option<String>)> = conn
        .prepare_cached(review_ids_sql)?
        .query_map(p, |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    Ok(rows
        .into_iter()
        .flat_map(|(id, f)| parse_findings(id, f))
        .collect())
}

fn pending_runs(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<PendingRun>> {
    conn.prepare_cached(sql)?
        .query_map(p, |r| {
            Ok(PendingRun {
                run_id: r.get(0)?,
                status: r.get(1)?,
                task: r.get(2)?,
            })
        })?
        .collect()
}

/// What a session's snapshot is made of.
pub fn session_state(
    conn: &Connection,
    session_id: &str,
    agent: &str,
    project: &str,
    now_ms: i64,
) -> Result<SessionState> {
    let prompts: Vec<String> = conn
        .prepare_cached(
            "SELECT substr(json_extract(payload, '$.prompt'), 1, 2000) FROM events \
             WHERE session_id = ?1 AND event IN ('UserPromptSubmit', 'BeforeAgent') \
             AND json_valid(payload) ORDER BY id LIMIT 4",
        )?
        .query_map([session_id], |r| r.get::<_, Option<String>>(0))?
        .filter_map(|p| p.transpose())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| !crate::event::is_synthetic_prompt(p))
        .take(2)
        .collect();
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT substr(json_extract(payload, '$.prompt'), 1, 2000) FROM events \
             WHERE session_id = ?1 AND event IN ('UserPromptSubmit', 'BeforeAgent') \
             AND json_valid(payload) ORDER BY id DESC LIMIT 1",
        )?
        .query_row([session_id], |r| r.get(0))
        .optional()?
        .flatten()
        .filter(|p: &String| !prompts.contains(p) && !crate::event::is_synthetic_prompt(p));
    let files: Vec<String> = conn
        .prepare_cached(&format!(
            "SELECT file_path, max(coalesce(finished_ms, started_ms)) AS t FROM tool_calls \
             WHERE session_id = ?1 AND file_path IS NOT NULL AND tool_name IN {WRITE_TOOLS} \
             AND outcome = 'success' GROUP BY file_path ORDER BY t DESC LIMIT ?2"
        ))?
        .query_map(params![session_id, memory::MAX_FILES as i64 * 2], |r| {
            r.get(0)
        })?
        .collect::<Result<_>>()?;
    let files_total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(DISTINCT file_path) FROM tool_calls WHERE session_id = ?1 \
             AND file_path IS NOT NULL AND tool_name IN {WRITE_TOOLS} AND outcome = 'success'"
        ))?
        .query_row([session_id], |r| r.get(0))?;
    let claims: Vec<String> = conn
        .prepare_cached(
            "SELECT path FROM claims WHERE session_id = ?1 AND expires_ms > ?2 \
             ORDER BY touched_ms DESC LIMIT 20",
        )?
        .query_map(params![session_id, now_ms], |r| r.get(0))?
        .collect::<Result<_>>()?;
    let findings = open_findings(
        conn,
        "SELECT id, findings FROM reviews WHERE session_id = ?1 AND status = 'reject' \
         AND handed_off_ms IS NULL AND id = (SELECT max(id) FROM reviews WHERE session_id = ?1)",
        [session_id],
    )?;
    let runs = pending_runs(
        conn,
        "SELECT run_id, status, task FROM runs WHERE requester = ?1 \
         AND (status IN ('queued', 'running') OR waiter = 'gone') \
         ORDER BY created_ms DESC LIMIT 5",
        [session_id],
    )?;
    let mut notes = Vec::new();
    let mut turns = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT kind, session_id, text FROM memory WHERE project = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![project, RECENT_ROWS])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let owner: Option<String> = r.get(1)?;
        let mine = owner.as_deref() == Some(session_id);
        match kind.as_str() {
            "note" if (mine || owner.is_none()) && notes.len() < 5 => notes.push(r.get(2)?),
            "turn" if mine && turns.len() < 3 => turns.push(r.get(2)?),
            _ => {}
        }
    }
    Ok(SessionState {
        agent: agent.to_owned(),
        project: project.to_owned(),
        first_prompts: prompts,
        last_prompt: last,
        files,
        files_total: files_total as usize,
        claims,
        findings,
        runs,
        notes,
        turns,
    })
}

/// What a project's brief is made of, leaving out the session that asks; None when there is
/// nothing to say (no other session, note or run of this project in memory), found with one
/// indexed read. `quota` words the quota lines, asked only when there is a brief to give.
///
/// Reviews and runs are read as the newest few rows of their tables in the simplest query there
/// is, and matched to the project here: a hook compiles every statement it runs, and a join
/// costs more to compile than to run.
pub fn project_state(
    conn: &Connection,
    project: &str,
    except_session: &str,
    quota: impl FnOnce() -> Result<Vec<String>>,
) -> Result<Option<ProjectState>> {
    let mut sessions: Vec<PastSession> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut any = false;
    let mut stmt = conn.prepare_cached(
        "SELECT kind, session_id, agent, created_ms, text FROM memory WHERE project = ?1 \
         ORDER BY id DESC LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![project, RECENT_ROWS])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let owner: Option<String> = r.get(1)?;
        if owner.as_deref() == Some(except_session) {
            continue;
        }
        any = true;
        if let Some(o) = &owner
            && !seen.contains(o)
        {
            seen.push(o.clone());
        }
        match (kind.as_str(), owner) {
            ("note", _) if notes.len() < 5 => notes.push(r.get(4)?),
            ("turn", Some(owner)) => {
                let known = sessions.len();
                match sessions.iter_mut().find(|s| s.session_id == owner) {
                    Some(s) => s.turns += 1,
                    None if known < 3 => sessions.push(PastSession {
                        session_id: owner,
                        agent: r.get(2)?,
                        last_ms: r.get(3)?,
                        turns: 1,
                        latest: r.get(4)?,
                    }),
                    None => {}
                }
            }
            _ => {}
        }
    }
    drop(rows);
    if !any {
        return Ok(None);
    }
    // Each session's newest review, when it is an open REJECT of a session seen here.
    let mut findings = Vec::new();
    let mut judged: Vec<String> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT id, session_id, status, handed_off_ms IS NULL, findings FROM reviews \
         ORDER BY id DESC LIMIT 30",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let session: String = r.get(1)?;
        if judged.contains(&session) {
            continue;
        }
        judged.push(session.clone());
        let status: String = r.get(2)?;
        if status == "reject" && r.get::<_, bool>(3)? && seen.contains(&session) {
            findings.extend(parse_findings(r.get(0)?, r.get(4)?));
        }
    }
    drop(rows);
    let mut runs = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, status, task, cwd, waiter FROM runs ORDER BY created_ms DESC LIMIT 30",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let cwd: Option<String> = r.get(3)?;
        let here = cwd.as_deref().is_some_and(|c| {
            c == project
                || c.strip_prefix(project)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        let status: String = r.get(1)?;
        let waiter: String = r.get(4)?;
        if here && (matches!(status.as_str(), "queued" | "running") || waiter == "gone") {
            runs.push(PendingRun {
                run_id: r.get(0)?,
                status,
                task: r.get(2)?,
            });
        }
        if runs.len() == 5 {
            break;
        }
    }
    drop(rows);
    Ok(Some(ProjectState {
        project: project.to_owned(),
        sessions,
        findings,
        runs,
        notes,
        quota: quota()?,
    }))
}

/// A brief as it was kept: the newest memory id it saw, and its text.
pub type KeptBrief = (i64, String);

/// Where a project's brief stands, in one statement (a hook compiles each one it runs): the
/// newest memory id of the project (one seek in `memory_by_project`; None when it has no
/// memory), and the brief as last made with the newest id it saw. The brief is kept in `meta`
/// under `brief:<project>` (no table of its own: every table is schema each hook parses); an
/// empty text means there was nothing to say.
pub fn brief_state(conn: &Connection, project: &str) -> Result<(Option<i64>, Option<KeptBrief>)> {
    let (newest, value): (Option<i64>, Option<String>) = conn
        .prepare_cached(
            "SELECT (SELECT max(id) FROM memory WHERE project = ?1), \
             (SELECT value FROM meta WHERE key = 'brief:' || ?1)",
        )?
        .query_row([project], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let kept = value.and_then(|v| {
        let (upto, text) = v.split_once('\n')?;
        Some((upto.parse().ok()?, text.to_owned()))
    });
    Ok((newest, kept))
}

/// Keeps the brief made from the project's memory up to `upto`.
pub fn put_brief(conn: &Connection, project: &str, upto: i64, text: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute([format!("brief:{project}"), format!("{upto}\n{text}")])?;
    Ok(())
}

/// Drops every cached brief (reviews, runs or memory changed in a way ids do not show).
pub fn forget_briefs(conn: &Connection) -> Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key >= 'brief:' AND key < 'brief;'")?
        .execute([])?;
    Ok(())
}
