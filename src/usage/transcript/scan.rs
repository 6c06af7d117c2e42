//! Many transcripts at once: finding them, reading them on all cores, and keeping a deduplicated
//! view up to date.
//!
//! Owns the directory walk and the threads. Files are read in parallel but merged in the order of
//! the paths given (sorted by [`find_transcripts`]), so the result does not depend on timing.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cursor::{FileCursor, is_unchanged, read_changed};
use super::dedup::Dedup;
use super::line::{Tokens, UsageEntry};

/// The transcripts under a Claude config directory (`~/.claude` or `$CLAUDE_CONFIG_DIR`):
/// `projects/*/*.jsonl` (main sessions) and `projects/*/<session>/subagents/*.jsonl` (their
/// subagents), sorted by path. Symlinks are not followed and directories that cannot be read are
/// left out, as ccusage does.
pub fn find_transcripts(claude_config_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (project, kind) in entries(&claude_config_dir.join("projects")) {
        if !kind.is_dir() {
            continue;
        }
        for (path, kind) in entries(&project) {
            if kind.is_dir() {
                found.extend(
                    entries(&path.join("subagents"))
                        .filter(|(p, kind)| kind.is_file() && is_jsonl(p))
                        .map(|(p, _)| p),
                );
            } else if kind.is_file() && is_jsonl(&path) {
                found.push(path);
            }
        }
    }
    found.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    found
}

/// The entries of `dir` with their types (symlinks not followed); none if it cannot be read.
fn entries(dir: &Path) -> impl Iterator<Item = (PathBuf, std::fs::FileType)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
}

fn is_jsonl(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "jsonl")
}

/// The result of [`scan_all`].
#[derive(Debug, Default)]
pub struct Scan {
    /// Deduplicated usage of all the files.
    pub entries: Vec<UsageEntry>,
    /// Where each file that could be read was read to, in the order of the paths.
    pub cursors: Vec<FileCursor>,
    /// The files that could not be read (gone since they were listed, unreadable).
    pub errors: Vec<(PathBuf, io::Error)>,
}

/// Reads `paths` in full on all cores and deduplicates their usage.
pub fn scan_all(paths: &[PathBuf]) -> Scan {
    let mut dedup = Dedup::new();
    let mut scan = Scan::default();
    for (path, result) in paths.iter().zip(read_all(paths, &vec![None; paths.len()])) {
        match result {
            Ok(Some((entries, cursor))) => {
                dedup.extend(entries);
                scan.cursors.push(cursor);
            }
            // Only a file with a cursor can be unchanged.
            Ok(None) => {}
            Err(e) => scan.errors.push((path.clone(), e)),
        }
    }
    scan.entries = dedup.into_entries();
    scan
}

/// A deduplicated view of many transcripts, kept current by reading only what was appended.
#[derive(Debug, Default)]
pub struct Tracker {
    dedup: Dedup,
    cursors: HashMap<PathBuf, FileCursor>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Reads what `paths` gained since the last refresh (all of a file not seen before) on all
    /// cores, and merges it. A file that is unchanged costs one `stat`. A file read again from its
    /// start (replaced, truncated) merges with what is held, so it adds only responses not seen
    /// before. Returns the files that could not be read; a file that is gone is forgotten.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> Vec<(PathBuf, io::Error)> {
        let previous: Vec<Option<&FileCursor>> =
            paths.iter().map(|p| self.cursors.get(p)).collect();
        let results = read_all(paths, &previous);
        let mut errors = Vec::new();
        for (path, result) in paths.iter().zip(results) {
            match result {
                Ok(None) => {}
                Ok(Some((entries, cursor))) => {
                    self.dedup.extend(entries);
                    self.cursors.insert(path.clone(), cursor);
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::NotFound {
                        self.cursors.remove(path);
                    }
                    errors.push((path.clone(), e));
                }
            }
        }
        errors
    }

    /// The deduplicated entries, in the order their responses were first read.
    pub fn entries(&self) -> &[UsageEntry] {
        self.dedup.entries()
    }

    pub fn totals(&self) -> Tokens {
        self.dedup.totals()
    }

    /// Where each file was read to.
    pub fn cursors(&self) -> impl Iterator<Item = &FileCursor> {
        self.cursors.values()
    }
}

/// What reading one file gave: `None` when it had not changed since its cursor.
pub type FileResult = io::Result<Option<(Vec<UsageEntry>, FileCursor)>>;

/// `read_changed` for every path that changed, on as many threads as there are cores, results
/// in path order. Files never read before go largest first, so that no thread is left alone with
/// a big file at the end.
pub fn read_all(paths: &[PathBuf], previous: &[Option<&FileCursor>]) -> Vec<FileResult> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(paths.len());
    let read = |i: usize, buf: &mut Vec<u8>| -> FileResult {
        if let Some(prev) = previous[i]
            && is_unchanged(&paths[i], prev)?
        {
            return Ok(None);
        }
        let mut entries = Vec::new();
        let cursor = read_changed(&paths[i], previous[i], buf, &mut entries)?;
        Ok(Some((entries, cursor)))
    };
    if workers <= 1 {
        let mut buf = Vec::new();
        return (0..paths.len()).map(|i| read(i, &mut buf)).collect();
    }
    let mut order: Vec<(u64, usize)> = (0..paths.len())
        .map(|i| match previous[i] {
            Some(_) => (0, i),
            None => (std::fs::metadata(&paths[i]).map_or(0, |m| m.len()), i),
        })
        .collect();
    order.sort_by_key(|&(size, i)| (Reverse(size), i));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<FileResult>> = (0..paths.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = Vec::new();
                    let mut done = Vec::new();
                    while let Some(&(_, i)) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        done.push((i, read(i, &mut buf)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            // A panic in a reader is a bug: let it surface as one.
            let done = handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            for (i, result) in done {
                results[i] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("file was not read"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::transcript::cursor::read_new;
    use crate::usage::transcript::dedup::dedup;
    use crate::usage::transcript::fixtures::{Line, Scratch, assistant_lines};

    #[test]
    fn finds_sessions_and_their_subagents_only() {
        let dir = Scratch::new("find");
        let found = [
            "projects/-home-dev-a/s1.jsonl",
            "projects/-home-dev-a/s1/subagents/agent-x1.jsonl",
            "projects/-home-dev-a/s1/subagents/agent-x2.jsonl",
            "projects/-home-dev-b/s2.jsonl",
            "projects/-home-dev-a-b/s3.jsonl",
        ];
        let ignored = [
            "projects/-home-dev-a/s1/subagents/agent-x1.meta.json",
            "projects/-home-dev-a/notes.txt",
            "projects/-home-dev-a/s1/other/x.jsonl",
            "projects/-home-dev-a/s1/subagents/deeper/y.jsonl",
            "projects/top.jsonl",
            "elsewhere/-p/s.jsonl",
        ];
        for p in found.iter().chain(&ignored) {
            dir.write(p, "");
        }
        std::os::unix::fs::symlink(
            dir.path("projects/-home-dev-b/s2.jsonl"),
            dir.path("projects/-home-dev-b/link.jsonl"),
        )
        .unwrap();
        let mut want: Vec<PathBuf> = found.iter().map(|p| dir.path(p)).collect();
        // Byte order of the whole path, as ccusage sorts: "-a-b/" before "-a/".
        want.sort_by(|a, b| a.to_str().unwrap().cmp(b.to_str().unwrap()));
        assert_eq!(find_transcripts(&dir.0), want);
        assert_eq!(want[0], dir.path("projects/-home-dev-a-b/s3.jsonl"));
        assert!(find_transcripts(&dir.path("nothing-here")).is_empty());
    }

    /// The same history scanned in parallel and read file by file in order gives the same result.
    #[test]
    fn a_parallel_scan_equals_reading_in_order() {
        let dir = Scratch::new("scan");
        let mut paths = Vec::new();
        for f in 0..24u64 {
            // Each file repeats the previous file's last response, streamed lines included.
            let mut text = assistant_lines(f * 10..f * 10 + 10 + f);
            text += &(Line::user("tool output").text() + "\n");
            text += &Line::assistant(&format!("msg_{}", f * 10), &format!("req_{}", f * 10))
                .set("/message/usage/output_tokens", serde_json::json!(1))
                .text();
            text += "\n";
            paths.push(dir.write(&format!("projects/p/s{f:02}.jsonl"), &text));
        }
        paths.push(dir.path("projects/p/missing.jsonl"));
        let scan = scan_all(&paths);
        let serial: Vec<UsageEntry> = paths[..24]
            .iter()
            .flat_map(|p| read_new(p, None).unwrap().0)
            .collect();
        assert_eq!(serial.len(), (0..24).map(|f| 11 + f).sum::<usize>());
        let want = dedup(serial);
        assert_eq!(scan.entries, want);
        assert_eq!(
            scan.cursors.iter().map(|c| &c.path).collect::<Vec<_>>(),
            paths[..24].iter().collect::<Vec<_>>()
        );
        assert_eq!(scan.errors.len(), 1);
        assert_eq!(scan.errors[0].0, paths[24]);
    }

    #[test]
    fn a_tracker_reads_only_what_was_added() {
        let dir = Scratch::new("tracker");
        let a = dir.write("projects/p/a.jsonl", &assistant_lines(0..5));
        let b = dir.write("projects/p/a/subagents/agent-1.jsonl", "");
        let paths = vec![a.clone(), b.clone()];
        let mut tracker = Tracker::new();
        assert!(tracker.refresh(&paths).is_empty());
        assert_eq!(tracker.entries().len(), 5);
        let before = tracker.totals();
        // A streamed response: first a partial line, then the final one.
        let partial = Line::assistant("msg_s", "req_s")
            .sidechain()
            .set("/message/usage/output_tokens", serde_json::json!(2));
        dir.append(
            "projects/p/a/subagents/agent-1.jsonl",
            &(partial.text() + "\n"),
        );
        assert!(tracker.refresh(&paths).is_empty());
        assert_eq!(tracker.totals().output, before.output + 2);
        let last = partial.set("/message/usage/output_tokens", serde_json::json!(40));
        dir.append(
            "projects/p/a/subagents/agent-1.jsonl",
            &(last.text() + "\n"),
        );
        dir.append("projects/p/a.jsonl", &assistant_lines(5..6));
        assert!(tracker.refresh(&paths).is_empty());
        assert_eq!(tracker.entries().len(), 7);
        assert_eq!(tracker.totals().output, before.output + 40 + 5);
        // Read again from the start (the file was replaced): nothing counted twice.
        let copy = dir.write("copy.tmp", &std::fs::read_to_string(&a).unwrap());
        std::fs::rename(copy, &a).unwrap();
        assert!(tracker.refresh(&paths).is_empty());
        assert_eq!(tracker.entries().len(), 7);
        // A file that is gone is reported and forgotten.
        std::fs::remove_file(&b).unwrap();
        let errors = tracker.refresh(&paths);
        assert_eq!(errors.len(), 1);
        assert_eq!(tracker.cursors().count(), 1);
        assert_eq!(tracker.entries().len(), 7);
    }
}
