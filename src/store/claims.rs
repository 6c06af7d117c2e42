//! Claims (file locks), their log, and notices: the SQL. Deciding who may write is
//! `policy::file_lock`'s; this module only reads and writes rows.

use rusqlite::{Connection, OptionalExtension, Result, Row, params};

use crate::process::{self, ClientProcess};

/// One claim on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub path: String,
    pub session_id: String,
    pub agent: String,
    pub project_root: Option<String>,
    pub tool_name: Option<String>,
    pub claimed_ms: i64,
    pub touched_ms: i64,
    pub expires_ms: i64,
}

/// Why a claim's holder no longer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Its session ended (SessionEnd was recorded).
    Ended,
    /// Its client process is no longer running.
    ProcessExited,
}

/// A claim and what is known about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub claim: Claim,
    /// Set when the holder is known to be gone. Not looked up for the asker's own claim.
    pub gone: Option<Gone>,
    /// Whether the claim was taken before its write and the write is not yet seen done.
    pub provisional: bool,
}

/// The columns of a [`Claim`], in `claim_row`'s order (a macro, for `concat!`).
macro_rules! columns {
    () => {
        "path, session_id, agent, project_root, tool_name, claimed_ms, touched_ms, expires_ms"
    };
}

const COLUMNS: &str = columns!();

/// The claim on a path, and whether it is provisional (`held`).
pub const HELD_SQL: &str = concat!(
    "SELECT ",
    columns!(),
    ", provisional FROM claims WHERE path = ?1"
);

/// A claim on the same file under another path (`held`).
const HELD_BY_INODE_SQL: &str = concat!(
    "SELECT ",
    columns!(),
    ", provisional FROM claims WHERE ino = ?1 AND dev = ?2 LIMIT 1"
);

/// The provisional claims an agent moved on from (`drop_moved_on`).
pub const MOVED_ON_SQL: &str = "SELECT path FROM claims WHERE session_id = ?1 AND provisional = 1 \
     AND provisional_agent = ?2 AND path <> ?3";

/// A claim marked provisional or confirmed (`set_provisional`).
pub const SET_PROVISIONAL_SQL: &str =
    "UPDATE claims SET provisional = ?2, provisional_agent = ?3 WHERE path = ?1";

/// A claim its holder touched again (`touch`).
pub const TOUCH_SQL: &str = "UPDATE claims SET touched_ms = ?3, expires_ms = ?4, \
     dev = coalesce(?5, dev), ino = coalesce(?6, ino) WHERE path = ?1 AND session_id = ?2";

/// The notices waiting for a session (`pending_notices`).
pub const PENDING_NOTICES_SQL: &str =
    "SELECT id, text FROM notices WHERE session_id = ?1 AND delivered_ms IS NULL ORDER BY id";

fn claim_row(r: &Row<'_>) -> Result<Claim> {
    Ok(Claim {
        path: r.get(0)?,
        session_id: r.get(1)?,
        agent: r.get(2)?,
        project_root: r.get(3)?,
        tool_name: r.get(4)?,
        claimed_ms: r.get(5)?,
        touched_ms: r.get(6)?,
        expires_ms: r.get(7)?,
    })
}

/// The claim on `path`, if any.
pub fn get(conn: &Connection, path: &str) -> Result<Option<Claim>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM claims WHERE path = ?1"))?
        .query_row([path], claim_row)
        .optional()
}

/// Whether a session is known to be gone: ended, or its remembered process exited.
pub fn holder_gone(conn: &Connection, session_id: &str) -> Result<Option<Gone>> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT ended_ms, client_pid, client_start FROM sessions WHERE session_id = ?1",
        )?
        .query_row([session_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match row {
        Some((Some(_), _, _)) => Some(Gone::Ended),
        Some((None, Some(pid), Some(start))) => {
            let p = ClientProcess {
                pid: pid as u32,
                start_ticks: start as u64,
            };
            (!process::is_alive(p)).then_some(Gone::ProcessExited)
        }
        _ => None,
    })
}

/// The device and inode of an existing file (following symlinks), as stored beside a claim.
fn identity(path: &str) -> Option<(i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file()
        .then(|| (meta.dev() as i64, meta.ino() as i64))
}

/// The claim on the file at `path`: on that path, or on another path to the same file (a hard
/// link: same device and inode). The claim returned names the path it was taken on. Whether its
/// holder is gone is looked up only when the holder is not `asker`, the session asking (it is
/// sending this event: it is not gone, and no policy asks that of a session's own claim).
pub fn held(conn: &Connection, path: &str, asker: &str) -> Result<Option<Held>> {
    let row = |r: &Row<'_>| Ok((claim_row(r)?, r.get::<_, bool>(8)?));
    let found = match conn
        .prepare_cached(HELD_SQL)?
        .query_row([path], row)
        .optional()?
    {
        Some(found) => found,
        None => {
            let Some((dev, ino)) = identity(path) else {
                return Ok(None);
            };
            let other = conn
                .prepare_cached(HELD_BY_INODE_SQL)?
                .query_row(params![ino, dev], row)
                .optional()?;
            match other {
                Some(found) => found,
                None => return Ok(None),
            }
        }
    };
    let (claim, provisional) = found;
    let gone = if claim.session_id == asker {
        None
    } else {
        holder_gone(conn, &claim.session_id)?
    };
    Ok(Some(Held {
        claim,
        gone,
        provisional,
    }))
}

/// Writes a claim, replacing any other on the same path; remembers the file's device and inode
/// when it exists.
pub fn put(conn: &Connection, c: &Claim) -> Result<()> {
    let id = identity(&c.path);
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO claims ({COLUMNS}, dev, ino) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        c.path,
        c.session_id,
        c.agent,
        c.project_root,
        c.tool_name,
        c.claimed_ms,
        c.touched_ms,
        c.expires_ms,
        id.map(|i| i.0),
        id.map(|i| i.1),
    ])?;
    Ok(())
}

/// Marks the claim on `path` provisional, taken before the write by `agent` (`Some("")` for a
/// session's main agent, else its subagent's id; see migration 0006), or confirmed (`None`).
pub fn set_provisional(conn: &Connection, path: &str, agent: Option<&str>) -> Result<()> {
    conn.prepare_cached(SET_PROVISIONAL_SQL)?
        .execute(params![path, agent.is_some(), agent])?;
    Ok(())
}

/// Frees the provisional claims `agent` of `session_id` took for writes it has moved on from
/// (all but `except`, the file of the call now starting): Claude Code runs one write at a time,
/// so a write with no PostToolUse by the time the same agent starts another tool was refused.
pub fn drop_moved_on(
    conn: &Connection,
    session_id: &str,
    agent: &str,
    except: &str,
    now_ms: i64,
) -> Result<Vec<String>> {
    let paths: Vec<String> = conn
        .prepare_cached(MOVED_ON_SQL)?
        .query_map(params![session_id, agent, except], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for p in &paths {
        conn.prepare_cached("DELETE FROM claims WHERE path = ?1")?
            .execute([p])?;
        log(conn, now_ms, p, session_id, "refused", None)?;
    }
    Ok(paths)
}

/// Frees `session_id`'s claim on `path` if it is still provisional: the write it was taken for
/// never happened (refused, or failed). Returns whether a claim was freed.
pub fn drop_provisional(
    conn: &Connection,
    path: &str,
    session_id: &str,
    now_ms: i64,
    why: &str,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "DELETE FROM claims WHERE path = ?1 AND session_id = ?2 AND provisional = 1",
        )?
        .execute(params![path, session_id])?;
    if n > 0 {
        log(conn, now_ms, path, session_id, why, None)?;
    }
    Ok(n > 0)
}

/// How many SubagentStart events of a session a Stop looks through for agents still running.
const SUBAGENT_SCAN: i64 = 64;

/// Whether a session has a subagent that started and has not stopped (no SubagentStop with its
/// `agent_id` recorded), among its last `SUBAGENT_SCAN` SubagentStarts.
pub fn has_running_subagent(conn: &Connection, session_id: &str) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM (SELECT json_extract(payload, '$.agent_id') AS agent \
           FROM events WHERE session_id = ?1 AND event = 'SubagentStart' \
           ORDER BY id DESC LIMIT ?2) s \
         WHERE s.agent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e \
           WHERE e.session_id = ?1 AND e.event = 'SubagentStop' \
             AND json_extract(e.payload, '$.agent_id') = s.agent))",
    )?
    .query_row(params![session_id, SUBAGENT_SCAN], |r| r.get(0))
}

/// Refreshes a claim its holder touched again.
pub fn touch(
    conn: &Connection,
    path: &str,
    session_id: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    // A file created by the holder's first write exists now: learn its inode.
    let id = identity(path);
    conn.prepare_cached(TOUCH_SQL)?.execute(params![
        path,
        session_id,
        now_ms,
        expires_ms,
        id.map(|i| i.0),
        id.map(|i| i.1)
    ])?;
    Ok(())
}

/// Appends to the lock log.
pub fn log(
    conn: &Connection,
    ts_ms: i64,
    path: &str,
    session_id: &str,
    action: &str,
    other: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO lock_log (ts_ms, path, session_id, action, other) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ts_ms, path, session_id, action, other])?;
    Ok(())
}

/// Releases every claim of a session; returns the paths.
pub fn release_session(conn: &Connection, session_id: &str, now_ms: i64) -> Result<Vec<String>> {
    let paths: Vec<String> = conn
        .prepare_cached("SELECT path FROM claims WHERE session_id = ?1")?
        .query_map([session_id], |r| r.get(0))?
        .collect::<Result<_>>()?;
    if paths.is_empty() {
        return Ok(paths);
    }
    conn.prepare_cached("DELETE FROM claims WHERE session_id = ?1")?
        .execute([session_id])?;
    for p in &paths {
        log(conn, now_ms, p, session_id, "release", None)?;
    }
    Ok(paths)
}

/// Releases one claim, by whoever asks (`actor`); returns what was released.
pub fn release_path(
    conn: &Connection,
    path: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Option<Claim>> {
    let Some(claim) = get(conn, path)? else {
        return Ok(None);
    };
    conn.execute("DELETE FROM claims WHERE path = ?1", [path])?;
    log(
        conn,
        now_ms,
        path,
        actor,
        "release",
        Some(&claim.session_id),
    )?;
    Ok(Some(claim))
}

/// Every claim, newest first.
pub fn list(conn: &Connection) -> Result<Vec<Claim>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM claims ORDER BY touched_ms DESC"
    ))?
    .query_map([], claim_row)?
    .collect()
}

/// Every claim, newest first, with what is known about its holder.
pub fn list_held(conn: &Connection) -> Result<Vec<Held>> {
    let rows: Vec<(Claim, bool)> = conn
        .prepare(concat!(
            "SELECT ",
            columns!(),
            ", provisional FROM claims ORDER BY touched_ms DESC"
        ))?
        .query_map([], |r| Ok((claim_row(r)?, r.get(8)?)))?
        .collect::<Result<_>>()?;
    rows.into_iter()
        .map(|(claim, provisional)| {
            let gone = holder_gone(conn, &claim.session_id)?;
            Ok(Held {
                claim,
                gone,
                provisional,
            })
        })
        .collect()
}

/// Queues a notice for a session's next hook.
pub fn notify(conn: &Connection, session_id: &str, now_ms: i64, text: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO notices (session_id, created_ms, text) VALUES (?1, ?2, ?3)")?
        .execute(params![session_id, now_ms, text])?;
    Ok(())
}

/// Notices waiting for a session: (id, text), oldest first.
pub fn pending_notices(conn: &Connection, session_id: &str) -> Result<Vec<(i64, String)>> {
    conn.prepare_cached(PENDING_NOTICES_SQL)?
        .query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Marks notices delivered.
pub fn delivered(conn: &Connection, ids: &[i64], now_ms: i64) -> Result<()> {
    let mut st = conn.prepare_cached("UPDATE notices SET delivered_ms = ?2 WHERE id = ?1")?;
    for id in ids {
        st.execute(params![id, now_ms])?;
    }
    Ok(())
}
