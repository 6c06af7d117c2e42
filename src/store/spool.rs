//! The spool: where a recording waits when the store cannot take it (held locked past the busy
//! timeout, being recovered), so that no event is lost and none is stored twice.
//!
//! One JSON line per recording in `<db>.spool` (0600, never through a symlink, appended with
//! O_APPEND, at most [`MAX_SPOOL_BYTES`]); each line carries a unique id (`uid`). The next hook
//! that holds the store's write lock claims the file by renaming it into `<db>.spool.d/` as
//! `claimed-<pid>-<start>-<nanos>`, applies its lines in the same transaction as its own event,
//! and deletes it after the commit; if that commit fails the file is put back for the next one.
//!
//! A write applies at most [`REPLAY_BATCH`] recordings (or [`REPLAY_BATCH_BYTES`]): a spool
//! that grew during a long outage (up to 64 MiB, tens of thousands of events) would otherwise be
//! read, parsed and stored inside one write transaction, holding the lock for seconds while
//! every other hook on the machine waits past its busy timeout and spools in turn. What a write
//! leaves is renamed `rest-<nanos>-<offset>`: the offset of its first line not yet applied, in
//! the name, so that nothing is copied. The next write takes it as it takes the spool.
//!
//! A claimer can be killed at any point (a client's hook timeout):
//! - before its commit: its claimed file stays in `<db>.spool.d/`. Every write looks there (one
//!   directory read, usually of a directory that does not exist) and takes the files of dead
//!   claimers along, so they are recovered by the next hook call, not only by the next spool.
//! - after its commit, before the delete: the next claimer finds the file again, and
//!   `spool_applied` (the uids already stored) makes it skip every line it holds.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rusqlite::{Transaction, params};

use super::record::Recording;
use crate::private_file::{self, Mode};
use crate::process::{self, ClientProcess};

/// `<db>.spool`.
pub fn path_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool", db.display()))
}

/// `<db>.spool.d`: claimed spool files while they are applied, and unreadable ones kept aside.
pub fn dir_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool.d", db.display()))
}

/// The largest the spool may grow. A store that stays unusable (a newer schema, a broken disk)
/// must not fill the disk with waiting events: past this, new events are refused (and logged).
pub const MAX_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// How long `spool_applied` remembers a uid: far longer than any spool waits to be replayed.
const APPLIED_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// The most recordings one write applies from the spool (see the module docs). Applying one costs
/// about 35 µs inside the lock, so a batch holds it 2 to 3 ms (release build; a spool of 20,000
/// events applied whole held it 378 ms, one of 1,000 held it 34 ms).
pub const REPLAY_BATCH: usize = 64;

/// The most spooled bytes one write reads (the line that crosses it is read whole, so that every
/// write makes progress).
pub const REPLAY_BATCH_BYTES: u64 = 256 * 1024;

/// A spooled line longer than this is not a recording (the largest payload a hook reads is
/// 4 MiB): it is counted unreadable, and reading goes on after it.
const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A new recording id: this process, its start, the time and a counter. Unique on the machine
/// without a random source: a pid and start time name one process, and it never repeats a time
/// and counter pair.
fn new_uid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let me = process::this_process();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{}-{n}", me.pid, me.start_ticks, nanos())
}

/// Appends recordings to the spool, one line each, in one write; a recording without a uid is
/// given one. A write that fails part way (a full disk) is cut back off, so the spool never holds
/// a torn line. Refused when the spool already holds [`MAX_SPOOL_BYTES`].
pub fn append(db: &Path, recordings: &[Recording]) -> std::io::Result<()> {
    let mut text = String::new();
    for r in recordings {
        let line = match r.uid {
            Some(_) => serde_json::to_string(r),
            None => serde_json::to_string(&Recording {
                uid: Some(new_uid()),
                ..r.clone()
            }),
        };
        text.push_str(&line.map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = private_file::open(&path_for(db), Mode::Append)?;
    let len = file.metadata()?.len();
    if len.saturating_add(rest_bytes(&listing(&dir_for(db)))) >= MAX_SPOOL_BYTES {
        return Err(std::io::Error::other(format!(
            "the spool is full ({} MiB); run `harness doctor`",
            MAX_SPOOL_BYTES >> 20
        )));
    }
    file.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = file.set_len(len);
    })
}

/// Applies a spooled recording unless its uid was applied before (then returns false). One that
/// has no uid (spooled by an older agent-harness) is applied.
pub fn apply_once(tx: &Transaction<'_>, r: &Recording, now_ms: i64) -> rusqlite::Result<bool> {
    if let Some(uid) = &r.uid {
        let fresh = tx
            .prepare_cached(
                "INSERT INTO spool_applied (uid, ts_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![uid, now_ms])?;
        if fresh == 0 {
            return Ok(false);
        }
    }
    r.apply(tx)?;
    Ok(true)
}

/// Forgets applied uids older than `APPLIED_KEEP_MS` (a week); run beside a replay.
pub fn prune_applied(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM spool_applied WHERE ts_ms < ?1")?
        .execute([now_ms - APPLIED_KEEP_MS])?;
    Ok(())
}

/// Recordings claimed from the spool, to be applied and then settled. Dropped unsettled (the
/// transaction failed, or a panic unwound through it), the files are put back for the next
/// writer.
pub struct Claimed {
    db: PathBuf,
    /// The claimed files (the spool as renamed, what earlier writes left, orphans of claimers
    /// that died), and how far each was read.
    files: Vec<Taken>,
    pub recordings: Vec<Recording>,
    /// Lines that could not be read back (a torn write after a full disk): the claimed file is
    /// kept as `bad-...` in the spool directory for inspection.
    pub unreadable: usize,
    /// How many of `files` were left by claimers that died.
    pub orphans: usize,
    settled: bool,
}

/// One claimed file: its lines from `start` to `end` were read into the batch.
struct Taken {
    path: PathBuf,
    start: u64,
    end: u64,
    /// Read to its end.
    done: bool,
    unreadable: usize,
}

impl Claimed {
    /// Whether everything claimed is in this batch (nothing is left for a later write).
    pub fn is_whole(&self) -> bool {
        self.files.iter().all(|t| t.done)
    }
}

/// The offset of the first line not yet applied, from a claimed or rest file's name: its last
/// field after the three of `claimed-<pid>-<start>-<nanos>`, or after `rest-<nanos>`; 0 when
/// absent.
fn offset_in_name(path: &Path, fields_before: usize) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('-').nth(fields_before + 1))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
}

/// The files of the spool directory, by name, read once for the filters below (usually the
/// directory does not exist, and this is one failed system call).
fn listing(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect()
}

/// `rest-<nanos>-<offset>` files: what earlier writes left of a spool, for anyone to take.
fn rests(listing: &[(String, PathBuf)]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = listing
        .iter()
        .filter(|(name, _)| name.starts_with("rest-"))
        .map(|(_, path)| path.clone())
        .collect();
    // Oldest first: the nanos in the name.
    out.sort_by_key(|p| offset_in_name(p, 0));
    out
}

/// The bytes of rest files not yet applied.
fn rest_bytes(listing: &[(String, PathBuf)]) -> u64 {
    rests(listing)
        .iter()
        .map(|p| {
            let len = std::fs::symlink_metadata(p).map_or(0, |m| m.len());
            len.saturating_sub(offset_in_name(p, 1))
        })
        .sum()
}

/// Claims the spool, what earlier writes left of it and any orphaned claimed files, and reads one
/// batch of their recordings (see the module docs); call it holding the store's write lock, so
/// that one writer claims at a time. Costs a `stat` and a directory read when there is nothing.
pub fn claim(db: &Path) -> Option<Claimed> {
    let spool = path_for(db);
    let dir = dir_for(db);
    // Read from /proc only when something is claimed: this runs inside the write lock on every
    // hook call, and there is usually nothing.
    let me = std::cell::OnceCell::new();
    let claimed_name = |offset: u64| {
        let me = me.get_or_init(process::this_process);
        let name = format!("claimed-{}-{}-{}", me.pid, me.start_ticks, nanos());
        match offset {
            0 => dir.join(name),
            o => dir.join(format!("{name}-{o}")),
        }
    };
    let names = listing(&dir);
    let mut files: Vec<(PathBuf, u64)> = orphans(&names, "claimed-")
        .into_iter()
        .map(|p| {
            let offset = offset_in_name(&p, 3);
            (p, offset)
        })
        .collect();
    let orphan_count = files.len();
    for rest in rests(&names) {
        let offset = offset_in_name(&rest, 1);
        let to = claimed_name(offset);
        // Only one process wins each rename.
        if std::fs::rename(&rest, &to).is_ok() {
            files.push((to, offset));
        }
    }
    if spool.exists() {
        // Claimers of older versions left theirs beside the store.
        files.extend(legacy_orphans(&spool).into_iter().map(|p| (p, 0)));
        let _ = DirBuilder::new().mode(0o700).create(&dir);
        let file = claimed_name(0);
        if std::fs::rename(&spool, &file).is_ok() {
            files.push((file, 0));
        }
    }
    if files.is_empty() {
        return None;
    }
    let mut claimed = Claimed {
        db: db.to_path_buf(),
        files: Vec::new(),
        recordings: Vec::new(),
        unreadable: 0,
        orphans: orphan_count,
        settled: false,
    };
    let mut bytes = 0u64;
    for (path, start) in files {
        let full = claimed.recordings.len() >= REPLAY_BATCH || bytes >= REPLAY_BATCH_BYTES;
        let taken = if full {
            Taken {
                path,
                start,
                end: start,
                done: false,
                unreadable: 0,
            }
        } else {
            read_batch(path, start, &mut claimed.recordings, &mut bytes)
        };
        claimed.unreadable += taken.unreadable;
        claimed.files.push(taken);
    }
    Some(claimed)
}

/// Reads recordings from `path` at `start` until the batch is full or the file ends.
fn read_batch(path: PathBuf, start: u64, out: &mut Vec<Recording>, bytes: &mut u64) -> Taken {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
    let mut taken = Taken {
        path,
        start,
        end: start,
        done: false,
        unreadable: 0,
    };
    let file = private_file::open(&taken.path, Mode::Read)
        .and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f));
    let Ok(file) = file else {
        // Gone or unreadable: nothing to apply from it, and nothing to put back.
        taken.done = true;
        return taken;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    loop {
        if out.len() >= REPLAY_BATCH || *bytes >= REPLAY_BATCH_BYTES {
            taken.done = reader.fill_buf().map_or(true, |b| b.is_empty());
            return taken;
        }
        line.clear();
        let n = match (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => {
                taken.done = true;
                return taken;
            }
            Ok(n) => n as u64,
        };
        taken.end += n;
        *bytes += n;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(text) {
            Ok(r) => out.push(r),
            Err(_) => taken.unreadable += 1,
        }
    }
}

/// Files `<prefix><pid>-<start>-<nanos>` of the spool directory whose process is gone.
fn orphans(listing: &[(String, PathBuf)], prefix: &str) -> Vec<PathBuf> {
    listing
        .iter()
        .filter_map(|(name, path)| {
            let mut parts = name.strip_prefix(prefix)?.split('-');
            let pid: u32 = parts.next()?.parse().ok()?;
            let start_ticks: u64 = parts.next()?.parse().ok()?;
            parts.next()?.parse::<u128>().ok()?;
            let alive = process::is_alive(ClientProcess { pid, start_ticks });
            (!alive).then(|| path.clone())
        })
        .collect()
}

/// `<spool>.claimed-<pid>-<nanos>` files (the naming before `<db>.spool.d`) whose process is gone.
fn legacy_orphans(spool: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (spool.parent(), spool.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.claimed-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (pid, nanos) = name.strip_prefix(&prefix)?.split_once('-')?;
            nanos.parse::<u128>().ok()?;
            let pid: u32 = pid.parse().ok()?;
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            (!alive).then(|| e.path())
        })
        .collect()
}

/// What waits to be stored, for `harness doctor`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Bytes in the spool, and in what earlier writes left of it.
    pub spool_bytes: u64,
    /// Claimed files of claimers that died (recovered by the next hook call).
    pub orphans: usize,
    /// Files with unreadable lines kept aside.
    pub bad: usize,
}

/// What the spool holds now.
pub fn waiting(db: &Path) -> Waiting {
    let names = listing(&dir_for(db));
    let bad = names.iter().filter(|(n, _)| n.starts_with("bad-")).count();
    Waiting {
        spool_bytes: std::fs::symlink_metadata(path_for(db)).map_or(0, |m| m.len())
            + rest_bytes(&names),
        orphans: orphans(&names, "claimed-").len() + legacy_orphans(&path_for(db)).len(),
        bad,
    }
}

impl Claimed {
    /// The claimed recordings are in the store: remove the files read to their end, and name
    /// what is left of the others `rest-<nanos>-<offset>` for the next write. A file with
    /// unreadable lines is also kept aside whole, under a name of its own.
    pub fn settle(mut self) {
        self.settled = true;
        let dir = dir_for(&self.db);
        for t in &self.files {
            if t.unreadable > 0 {
                let name = t.path.file_name().map_or_else(String::new, |n| {
                    n.to_string_lossy()
                        .replace("claimed-", "")
                        .replace('.', "-")
                });
                let aside = dir.join(format!("bad-{name}-{}", nanos()));
                let _ = DirBuilder::new().mode(0o700).create(&dir);
                if t.done {
                    let _ = std::fs::rename(&t.path, aside);
                    continue;
                }
                let _ = std::fs::hard_link(&t.path, aside);
            }
            if t.done {
                let _ = std::fs::remove_file(&t.path);
            } else {
                let _ = std::fs::rename(&t.path, dir.join(format!("rest-{}-{}", nanos(), t.end)));
            }
        }
    }
}

impl Drop for Claimed {
    /// Not settled: the store refused them; put each file back as it was claimed, for the next
    /// writer. When even that fails, the claimed files stay and are recovered as orphans once
    /// this process is gone.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let dir = dir_for(&self.db);
        for t in &self.files {
            let _ = std::fs::rename(&t.path, dir.join(format!("rest-{}-{}", nanos(), t.start)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> String {
        let r = serde_json::json!({
            "ts_ms": 1, "session_id": "s", "agent": "claude", "event": "PreToolUse",
            "tool_use_id": format!("t{i}"), "agent_id": null, "cwd": "/tmp",
            "project_root": null, "transcript_path": null, "model": null, "lifecycle": "None",
            "tool": null, "truncated": false, "payload": "{}", "uid": format!("u{i:05}")
        });
        format!("{r}\n")
    }

    fn uids(c: &Claimed) -> Vec<String> {
        c.recordings
            .iter()
            .map(|r| r.uid.clone().unwrap())
            .collect()
    }

    fn spool_of(n: usize) -> (std::path::PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "agent-harness-spool-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("h.db");
        let text: String = (0..n).map(line).collect();
        std::fs::write(path_for(&db), text).unwrap();
        (dir, db)
    }

    #[test]
    fn a_spool_is_claimed_a_batch_at_a_time_and_each_batch_takes_up_where_the_last_stopped() {
        let total = REPLAY_BATCH * 2 + 5;
        let (dir, db) = spool_of(total);
        let mut seen = Vec::new();
        let mut batches = 0;
        while let Some(c) = claim(&db) {
            assert!(c.recordings.len() <= REPLAY_BATCH);
            assert_eq!(
                c.is_whole(),
                c.recordings.len() < REPLAY_BATCH || seen.len() + c.recordings.len() == total
            );
            seen.extend(uids(&c));
            c.settle();
            batches += 1;
            assert!(batches <= 4, "never drains");
        }
        let want: Vec<String> = (0..total).map(|i| format!("u{i:05}")).collect();
        assert_eq!(seen, want);
        assert_eq!(batches, 3);
        assert_eq!(waiting(&db), Waiting::default());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_batch_whose_write_failed_is_put_back_from_where_it_began() {
        let (dir, db) = spool_of(REPLAY_BATCH + 3);
        let first = claim(&db).unwrap();
        first.settle();
        // The second batch is claimed, and its transaction fails (dropped unsettled).
        let failed = claim(&db).unwrap();
        let again = uids(&failed);
        assert_eq!(again.len(), 3);
        drop(failed);
        assert!(waiting(&db).spool_bytes > 0);
        let retried = claim(&db).unwrap();
        assert_eq!(uids(&retried), again);
        assert!(retried.is_whole());
        retried.settle();
        assert!(claim(&db).is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_last_line_is_counted_unreadable_and_kept_aside() {
        let (dir, db) = spool_of(2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path_for(&db))
            .unwrap();
        f.write_all(b"{\"ts_ms\": 1, \"sess").unwrap();
        let c = claim(&db).unwrap();
        assert_eq!((c.recordings.len(), c.unreadable), (2, 1));
        c.settle();
        assert_eq!(waiting(&db).bad, 1);
        assert_eq!(waiting(&db).spool_bytes, 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
