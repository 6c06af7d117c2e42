//! The process entry of the hook binaries and the status line: [`short_process_main!`].
//!
//! A hook is a new process for every event, so what Rust's runtime does before `main` is paid on
//! every call. Most of it a hook does not need: the main thread's stack guard alone reads and
//! parses `/proc/self/maps` (four reads and a `sscanf` per mapping) and installs a signal stack
//! and two handlers, a dozen system calls and 110,000 instructions of the 2.1 M a PreToolUse call
//! costs (callgrind). These binaries start from the C `main` instead and do themselves the two
//! parts of the runtime's start that matter: standard descriptors that are closed are opened on
//! `/dev/null` (so that no file the hook opens later lands on fd 1 and receives its answer), and
//! `SIGPIPE` is ignored (a client that stopped reading gets `EPIPE`, handled where stdout is
//! written, rather than the hook being killed). On the way out stdout is flushed, as the runtime
//! would. What is lost: a stack overflow ends the process with `SIGSEGV` instead of a message,
//! which changes nothing for a hook (either way it is not a clean exit, and none recurses
//! without a bound: JSON nesting is capped by the parser).

use std::io::Write;
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::process::ExitCode;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// Defines the C `main` of a binary that declares `#![no_main]`, running `$body` (an expression
/// of type [`ExitCode`]) through [`run`].
#[macro_export]
macro_rules! short_process_main {
    ($body:expr) => {
        /// The C entry point; see `agent_harness::entry`.
        #[unsafe(no_mangle)]
        pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::entry::run(|| $body)
        }
    };
}

/// Prepares the process as Rust's runtime would for these binaries, runs `body` and returns its
/// exit status for C's `main`.
pub fn run(body: impl FnOnce() -> ExitCode) -> i32 {
    open_closed_stdio();
    ignore_sigpipe();
    let code = body();
    let _ = std::io::stdout().lock().flush();
    if code == ExitCode::SUCCESS { 0 } else { 1 }
}

/// Opens `/dev/null` on each of fds 0, 1 and 2 that is closed. `open` takes the lowest free
/// descriptor, so opening in order fills exactly the closed ones.
fn open_closed_stdio() {
    // SAFETY: the descriptors are only polled: a closed one is reported (POLLNVAL), not used.
    let fds = unsafe { [0, 1, 2].map(|fd| BorrowedFd::borrow_raw(fd)) };
    let mut polled = fds.map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::empty()));
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if poll(&mut polled, Some(&zero)).is_err() {
        return;
    }
    let closed = polled.map(|p| p.revents().contains(PollFlags::NVAL));
    for is_closed in closed {
        if is_closed {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                // Kept open for the life of the process.
                Ok(null) => {
                    let _ = null.into_raw_fd();
                }
                Err(_) => return,
            }
        }
    }
}

/// The disposition `SIG_IGN` and the signal number of `SIGPIPE` on Linux.
const SIG_IGN: usize = 1;
const SIGPIPE: i32 = 13;

unsafe extern "C" {
    /// C's `signal(2)`; `handler` is a `sighandler_t`.
    fn signal(signum: i32, handler: usize) -> usize;
}

fn ignore_sigpipe() {
    // SAFETY: setting a standard signal's disposition to SIG_IGN, before any thread exists.
    unsafe {
        signal(SIGPIPE, SIG_IGN);
    }
}
