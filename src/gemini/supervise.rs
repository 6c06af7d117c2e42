//! Supervising one headless child process to its end, with every wait and every buffer bounded:
//! a hard deadline that ends the child's whole process group, stdout handed over line by line
//! (a line longer than a bound is skipped and counted, never buffered), the end of stderr kept,
//! and no wait on a pipe that outlives the child.
//!
//! Owns the process mechanics only; knows nothing of Gemini CLI (its argv, its stream format, its
//! exit codes live in `runner.rs` and `stream.rs`). A second headless backend would build its own
//! command and fold its own lines, and reuse this.
//!
//! Why the pipes are polled rather than read to their end: a descendant that leaves the process
//! group (`setsid`, a daemonising tool) inherits stdout and can keep it open long after the child
//! exited. Reading to EOF would then wait for that stranger, past the deadline, with the finished
//! answer in hand. So the child's exit, not the pipe's end, decides: after it exits, the pipes are
//! drained for at most [`Limits::drain`] and then dropped (a writer still holding them gets EPIPE).

use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// The bounds of one supervised run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the start of supervision to SIGTERM of the process group.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL of the group.
    pub kill_grace: Duration,
    /// How long the pipes are still read once the child is gone (what it wrote before exiting is
    /// in the pipe buffer; EOF normally comes at once).
    pub drain: Duration,
    /// The longest stdout line handed over; longer ones are skipped and counted.
    pub max_line: usize,
    /// How much of stderr's end is kept.
    pub stderr_tail: usize,
}

/// How a supervised child ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// The child's exit status; None when it could not be reaped.
    pub status: Option<ExitStatus>,
    /// The deadline passed and the group was signalled.
    pub timed_out: bool,
    /// The last [`Limits::stderr_tail`] bytes of stderr, as text.
    pub stderr_tail: String,
    pub stdout_bytes: u64,
    /// stdout lines longer than [`Limits::max_line`], skipped.
    pub oversized_lines: u64,
    /// Some process outside the group still held stdout or stderr open when supervision ended.
    pub pipes_left_open: bool,
}

/// Splits a byte stream into lines without ever holding more than `max` bytes of one.
struct Lines {
    line: Vec<u8>,
    max: usize,
    /// Inside a line that passed `max`: its bytes are dropped until its newline.
    skipping: bool,
    oversized: u64,
}

impl Lines {
    fn new(max: usize) -> Lines {
        Lines {
            line: Vec::new(),
            max,
            skipping: false,
            oversized: 0,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let (part, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.skipping {
                if self.line.len() + part.len() > self.max {
                    self.skipping = true;
                    // Give the memory back at once: the point is to stay flat.
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            if ended {
                self.end_line(on_line);
            }
        }
    }

    fn end_line(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if self.skipping {
            self.oversized += 1;
            self.skipping = false;
        } else {
            on_line(&self.line);
        }
        self.line.clear();
        if self.line.capacity() > 1 << 20 {
            self.line = Vec::new();
        }
    }

    /// The end of the stream: a last line without its newline still counts.
    fn finish(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if self.skipping || !self.line.is_empty() {
            self.end_line(on_line);
        }
    }
}

/// Keeps the last `keep` bytes of what it is fed.
struct Tail {
    kept: Vec<u8>,
    keep: usize,
}

impl Tail {
    fn feed(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(self.keep)..];
        self.kept.extend_from_slice(bytes);
        if self.kept.len() > 2 * self.keep {
            self.kept.drain(..self.kept.len() - self.keep);
        }
    }

    fn text(mut self) -> String {
        if self.kept.len() > self.keep {
            self.kept.drain(..self.kept.len() - self.keep);
        }
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

/// One pipe being read: None once it reached EOF or failed.
struct Pipe<R> {
    reader: Option<R>,
}

impl<R: Read + AsFd> Pipe<R> {
    fn new(reader: Option<R>) -> Pipe<R> {
        if let Some(r) = &reader {
            // Non-blocking, so that a read never waits: poll says when there is something.
            let fd = r.as_fd();
            if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
                let _ = rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK);
            }
        }
        Pipe { reader }
    }

    /// Reads what is there now into `sink`; returns the bytes read.
    fn read_ready(&mut self, buf: &mut [u8], sink: &mut dyn FnMut(&[u8])) -> u64 {
        let mut total = 0u64;
        while let Some(r) = &mut self.reader {
            match r.read(buf) {
                Ok(0) => self.reader = None,
                Ok(n) => {
                    total += n as u64;
                    sink(&buf[..n]);
                    // Come back through poll now and then, so that a fast writer cannot keep
                    // this loop from watching the clock.
                    if total >= 4 << 20 {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.reader = None,
            }
        }
        total
    }

    fn open(&self) -> bool {
        self.reader.is_some()
    }
}

/// Supervises `child` (started in its own process group, stdout and stderr piped) until it ends
/// or `limits.timeout` passes, handing each stdout line to `on_line`.
pub fn supervise(mut child: Child, limits: Limits, on_line: &mut dyn FnMut(&[u8])) -> Ended {
    let started = Instant::now();
    let pgid = child.id();
    let mut out = Pipe::new(child.stdout.take());
    let mut err = Pipe::new(child.stderr.take());
    let mut lines = Lines::new(limits.max_line);
    let mut tail = Tail {
        kept: Vec::new(),
        keep: limits.stderr_tail,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut ended = Ended::default();

    let deadline = started + limits.timeout;
    // Set when the child is gone (or given up on): the pipes are read until then, no longer.
    let mut drain_until: Option<Instant> = None;
    let mut termed_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if ended.status.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => ended.status = Some(status),
                Ok(None) => {}
                // Cannot be waited for (not ours any more): nothing left to wait for.
                Err(_) => drain_until = drain_until.or(Some(now)),
            }
        }
        if ended.status.is_some() && drain_until.is_none() {
            // Whatever is left of the group (tools the run started) goes too, so that nothing
            // outlives the run.
            signal_group(pgid, rustix::process::Signal::KILL);
            drain_until = Some(now + limits.drain);
        }
        if ended.status.is_none() && now >= deadline {
            match termed_at {
                None => {
                    ended.timed_out = true;
                    signal_group(pgid, rustix::process::Signal::TERM);
                    termed_at = Some(now);
                }
                Some(at) if now >= at + limits.kill_grace && drain_until.is_none() => {
                    signal_group(pgid, rustix::process::Signal::KILL);
                    // SIGKILL cannot be ignored: the child is reaped within the drain time, or
                    // (stuck in the kernel) left to init.
                    drain_until = Some(now + limits.drain);
                }
                Some(_) => {}
            }
        }
        let pipes_open = out.open() || err.open();
        if let Some(until) = drain_until
            && (!pipes_open || now >= until)
        {
            ended.pipes_left_open = pipes_open;
            break;
        }
        // Wait for output, but wake to watch the child and the clock.
        let next_signal = match termed_at {
            None => Some(deadline),
            Some(at) if drain_until.is_none() => Some(at + limits.kill_grace),
            Some(_) => None,
        };
        let wake = [
            Some(Duration::from_millis(50)),
            next_signal.map(|t| t.saturating_duration_since(now)),
            drain_until.map(|u| u.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
        if pipes_open {
            let mut fds = Vec::with_capacity(2);
            if let Some(r) = &out.reader {
                fds.push(PollFd::new(r, PollFlags::IN));
            }
            if let Some(r) = &err.reader {
                fds.push(PollFd::new(r, PollFlags::IN));
            }
            let timeout = Timespec {
                tv_sec: wake.as_secs() as i64,
                tv_nsec: i64::from(wake.subsec_nanos()),
            };
            let _ = poll(&mut fds, Some(&timeout));
        } else {
            std::thread::sleep(wake);
        }
        ended.stdout_bytes += out.read_ready(&mut buf, &mut |bytes| lines.feed(bytes, on_line));
        err.read_ready(&mut buf, &mut |bytes| tail.feed(bytes));
    }
    if ended.status.is_none() {
        ended.status = child.try_wait().ok().flatten();
    }
    if !out.open() {
        lines.finish(on_line);
    }
    ended.oversized_lines = lines.oversized;
    ended.stderr_tail = tail.text();
    ended
}

fn signal_group(pgid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, u64) {
        let mut got = Vec::new();
        let mut lines = Lines::new(max);
        for c in chunks {
            lines.feed(c, &mut |l| got.push(l.to_vec()));
        }
        lines.finish(&mut |l| got.push(l.to_vec()));
        (got, lines.oversized)
    }

    #[test]
    fn lines_are_split_across_chunks_and_a_last_line_without_newline_counts() {
        let (got, over) = split(&[b"ab", b"c\nde", b"f\n\ngh"], 100);
        assert_eq!(got, [&b"abc"[..], b"def", b"", b"gh"]);
        assert_eq!(over, 0);
    }

    #[test]
    fn an_over_long_line_is_skipped_counted_and_never_held() {
        let long = vec![b'x'; 1000];
        let mut lines = Lines::new(64);
        let mut got = Vec::new();
        lines.feed(b"{\"a\":1}\n", &mut |l| got.push(l.to_vec()));
        for _ in 0..100 {
            lines.feed(&long, &mut |l| got.push(l.to_vec()));
            assert!(
                lines.line.capacity() <= 64 * 2,
                "held {}",
                lines.line.capacity()
            );
        }
        lines.feed(b"\nafter\n", &mut |l| got.push(l.to_vec()));
        lines.finish(&mut |l| got.push(l.to_vec()));
        assert_eq!(got, [&b"{\"a\":1}"[..], b"after"]);
        assert_eq!(lines.oversized, 1);
        // Exactly at the bound is still a line.
        let (got, over) = split(&[&[b'y'; 64][..], b"\n"], 64);
        assert_eq!((got.len(), over), (1, 0));
    }

    #[test]
    fn the_stderr_tail_keeps_the_end() {
        let mut t = Tail {
            kept: Vec::new(),
            keep: 10,
        };
        for _ in 0..1000 {
            t.feed(&[b'x'; 100]);
        }
        t.feed(b"THE END");
        assert_eq!(t.text(), "xxxTHE END");
    }
}
