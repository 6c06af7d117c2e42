//! Incremental reading of one transcript: where the last read stopped, and reading on from there.
//!
//! Owns the file IO of the reader: one `stat` when nothing changed, otherwise one open, a 1 KiB
//! read of the file's head (to tell a replaced file from a grown one) and large sequential reads
//! of the new bytes. Must not write the file.
//!
//! Only regular files are read: a transcript path comes from a hook payload, and a FIFO there
//! would block the open until some writer came (hanging the hook until its client killed it), a
//! device would never end. The file is opened non-blocking and checked with `fstat` on the
//! opened descriptor, so nothing swapped in after a `stat` can slip through.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::fnv1a;
use super::line::{UsageEntry, find_byte, scan_line};

/// How far a transcript has been read, and what the file looked like then. Plain data, for the
/// caller to keep (in memory or in the store, as JSON) and hand back to [`read_new`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileCursor {
    pub path: PathBuf,
    /// Device and inode of the file read: a different pair under the same path is a new file.
    pub dev: u64,
    pub ino: u64,
    /// Where the next read starts: just after the last complete line read. A partly written last
    /// line is left for the next read.
    pub offset: u64,
    /// Length and modification time (ns since the epoch) when last read: when both are unchanged,
    /// [`read_new`] does not even open the file.
    pub len: u64,
    pub mtime_ns: i64,
    /// How many of the file's first bytes (complete lines only, at most [`HEAD_BYTES`]) `head_hash`
    /// covers, and their FNV-1a hash: if they change, the file was rewritten, not appended to.
    pub head_len: u32,
    pub head_hash: u64,
}

/// The most bytes at the start of a file that a [`FileCursor`] fingerprints.
pub const HEAD_BYTES: usize = 1024;

/// The first read's size, and the buffer's size while no line is longer.
const CHUNK: usize = 1 << 20;

/// Reads the complete lines written since `previous` (the whole file when `previous` is `None`)
/// and returns their usage, not deduplicated, with the cursor to pass next time.
///
/// The file is read from the start again, never from the old offset, when it is not the file
/// `previous` saw: another device/inode (replaced under the same name), shorter than the offset
/// (truncated), or different first bytes (rewritten in place). Otherwise bytes before the offset
/// are never read again, except the first [`HEAD_BYTES`] for the fingerprint.
pub fn read_new(
    path: &Path,
    previous: Option<&FileCursor>,
) -> io::Result<(Vec<UsageEntry>, FileCursor)> {
    let mut entries = Vec::new();
    if let Some(prev) = previous
        && is_unchanged(path, prev)?
    {
        let cursor = FileCursor {
            path: path.to_path_buf(),
            ..prev.clone()
        };
        return Ok((entries, cursor));
    }
    let cursor = read_changed(path, previous, &mut Vec::new(), &mut entries)?;
    Ok((entries, cursor))
}

/// Whether the file at `path` is the one `prev` read, with the same length and modification
/// time: then there is nothing new to read. One `stat`.
pub(super) fn is_unchanged(path: &Path, prev: &FileCursor) -> io::Result<bool> {
    let meta = std::fs::metadata(path)?;
    Ok(is_same_file(prev, &meta) && meta.len() == prev.len && mtime_ns(&meta) == prev.mtime_ns)
}

/// [`read_new`] after the unchanged check, with the caller's read buffer (kept between files)
/// and output.
pub(super) fn read_changed(
    path: &Path,
    previous: Option<&FileCursor>,
    buf: &mut Vec<u8>,
    out: &mut Vec<UsageEntry>,
) -> io::Result<FileCursor> {
    let (mut file, meta) = open_regular(path)?;
    let len = meta.len();
    let mut head = [0u8; HEAD_BYTES];
    let head_read = read_head(&file, &mut head[..(len as usize).min(HEAD_BYTES)])?;
    let head = &head[..head_read];
    let start = match previous {
        Some(prev)
            if is_same_file(prev, &meta) && len >= prev.offset && head_matches(prev, head) =>
        {
            prev.offset
        }
        _ => 0,
    };
    let offset = read_lines(&mut file, start, len, buf, out)?;
    let head_len = (offset as usize).min(head.len());
    Ok(FileCursor {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        offset,
        len,
        mtime_ns: mtime_ns(&meta),
        head_len: head_len as u32,
        head_hash: fnv1a(&head[..head_len]),
    })
}

pub(crate) use crate::private_file::open_regular;

fn is_same_file(prev: &FileCursor, meta: &Metadata) -> bool {
    prev.dev == meta.dev() && prev.ino == meta.ino()
}

fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn head_matches(prev: &FileCursor, head: &[u8]) -> bool {
    head.get(..prev.head_len as usize)
        .is_some_and(|bytes| fnv1a(bytes) == prev.head_hash)
}

/// Fills `head` from the file's start, or as much of it as the file now holds.
fn read_head(file: &File, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Scans the complete lines in `start..len` and returns the offset after the last one. Bytes
/// appended while reading are left for the next read, so the cursor's length stays true.
fn read_lines(
    file: &mut File,
    start: u64,
    len: u64,
    buf: &mut Vec<u8>,
    out: &mut Vec<UsageEntry>,
) -> io::Result<u64> {
    let mut remaining = len.saturating_sub(start);
    if remaining == 0 {
        return Ok(start);
    }
    file.seek(SeekFrom::Start(start))?;
    if buf.len() < CHUNK {
        buf.resize(CHUNK, 0);
    }
    // buf[..filled] holds file bytes from `base`; lines start at buf[0]; buf[..searched] has no
    // newline.
    let (mut base, mut filled, mut searched) = (start, 0usize, 0usize);
    while remaining > 0 {
        if filled == buf.len() {
            // One line longer than the buffer: grow it.
            buf.resize(buf.len() * 2, 0);
        }
        let want = (buf.len() - filled).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[filled..filled + want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        remaining -= n as u64;
        let mut line_start = 0;
        while let Some(nl) = find_byte(&buf[searched..filled], b'\n') {
            let end = searched + nl;
            if let Some(entry) = scan_line(&buf[line_start..end]) {
                out.push(entry);
            }
            line_start = end + 1;
            searched = line_start;
        }
        buf.copy_within(line_start..filled, 0);
        base += line_start as u64;
        filled -= line_start;
        searched = filled;
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::transcript::fixtures::{Line, Scratch, assistant_lines};

    fn ids(entries: &[UsageEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.message_id.as_str()).collect()
    }

    #[test]
    fn appended_lines_are_read_once() {
        let dir = Scratch::new("append");
        let path = dir.write("s.jsonl", &assistant_lines(0..3));
        let (first, c1) = read_new(&path, None).unwrap();
        assert_eq!(ids(&first), ["msg_0", "msg_1", "msg_2"]);
        assert_eq!(c1.offset, c1.len);
        let (none, c2) = read_new(&path, Some(&c1)).unwrap();
        assert!(none.is_empty());
        assert_eq!(c2, c1);
        dir.append("s.jsonl", &(Line::user("x").text() + "\n"));
        dir.append("s.jsonl", &assistant_lines(3..5));
        let (more, c3) = read_new(&path, Some(&c2)).unwrap();
        assert_eq!(ids(&more), ["msg_3", "msg_4"]);
        assert_eq!(
            (c3.ino, c3.offset),
            (c1.ino, std::fs::metadata(&path).unwrap().len())
        );
    }

    #[test]
    fn a_partly_written_last_line_waits_for_its_end() {
        let dir = Scratch::new("partial");
        let whole = assistant_lines(0..2);
        let cut = whole.len() - 40;
        let path = dir.write("s.jsonl", &whole[..cut]);
        let (first, c1) = read_new(&path, None).unwrap();
        assert_eq!(ids(&first), ["msg_0"]);
        let first_line_end = whole.find('\n').unwrap() as u64 + 1;
        assert_eq!((c1.offset, c1.len), (first_line_end, cut as u64));
        // Nothing more written: nothing more read, even though the cursor is short of the end.
        assert!(read_new(&path, Some(&c1)).unwrap().0.is_empty());
        dir.append("s.jsonl", &whole[cut..]);
        let (rest, c2) = read_new(&path, Some(&c1)).unwrap();
        assert_eq!(ids(&rest), ["msg_1"]);
        assert_eq!(c2.offset, whole.len() as u64);
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_read_whole() {
        let dir = Scratch::new("long");
        let big = Line::assistant("msg_big", "req_big")
            .set(
                "/message/content/0/text",
                serde_json::json!("y".repeat(3 * CHUNK)),
            )
            .text();
        let text = format!(
            "{}\n{big}\n{}",
            assistant_lines(0..1),
            assistant_lines(1..2)
        );
        let path = dir.write("s.jsonl", &text);
        let (entries, cursor) = read_new(&path, None).unwrap();
        assert_eq!(ids(&entries), ["msg_0", "msg_big", "msg_1"]);
        assert_eq!(cursor.offset, text.len() as u64);
    }

    /// Every way the file under a cursor can stop being the file the cursor saw.
    #[test]
    fn a_file_that_is_not_the_one_read_is_read_from_the_start() {
        type Change = fn(&Scratch, &Path);
        let cases: Vec<(&str, Change, Vec<&str>)> = vec![
            (
                "truncated below the offset",
                |_, p| std::fs::write(p, assistant_lines(7..8)).unwrap(),
                vec!["msg_7"],
            ),
            (
                "replaced by rename (new inode) with the same start and more",
                |d, p| {
                    let text = assistant_lines(0..3) + &assistant_lines(10..12);
                    let tmp = d.write("new.tmp", &text);
                    std::fs::rename(tmp, p).unwrap();
                },
                vec!["msg_0", "msg_1", "msg_2", "msg_10", "msg_11"],
            ),
            (
                "rewritten in place (same inode), longer than before",
                |_, p| {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                    f.write_all(assistant_lines(20..26).as_bytes()).unwrap();
                },
                vec!["msg_20", "msg_21", "msg_22", "msg_23", "msg_24", "msg_25"],
            ),
        ];
        for (n, (name, change, want)) in cases.into_iter().enumerate() {
            let dir = Scratch::new(&format!("replace-{n}"));
            let path = dir.write("s.jsonl", &assistant_lines(0..3));
            let (_, cursor) = read_new(&path, None).unwrap();
            change(&dir, &path);
            let (entries, after) = read_new(&path, Some(&cursor)).unwrap();
            assert_eq!(ids(&entries), want, "{name}");
            assert_eq!(
                after.offset,
                std::fs::metadata(&path).unwrap().len(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_fifo_or_a_device_as_a_transcript_is_refused_without_blocking() {
        // Before: opening a FIFO blocked until a writer came, hanging the hook.
        let dir = Scratch::new("fifo");
        let fifo = dir.path("s.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for path in [fifo, PathBuf::from("/dev/zero")] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_new(&p, None).map(|_| ()));
            });
            let got = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("reading {} blocked", path.display()));
            let err = got.unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidInput,
                "{}",
                path.display()
            );
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = Scratch::new("missing");
        let err = read_new(&dir.path("gone.jsonl"), None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
