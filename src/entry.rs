//! The process entry of the hook binaries and the status line: [`crate::short_process_main!`].
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
use std::os::fd::IntoRawFd;
use std::process::ExitCode;

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
    let mut fds = [0, 1, 2].map(|fd| PollFd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is an array of three `struct pollfd`, valid for the call; poll only reads
    // the descriptors' state (a closed one is reported as POLLNVAL, not used).
    if unsafe { poll(fds.as_mut_ptr(), fds.len() as u64, 0) } < 0 {
        return;
    }
    for p in fds {
        if p.revents & POLLNVAL != 0 {
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

/// C's `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// `POLLNVAL`: the descriptor is not open.
const POLLNVAL: i16 = 0x20;

/// The disposition `SIG_IGN` and the signal number of `SIGPIPE` on Linux.
const SIG_IGN: usize = 1;
const SIGPIPE: i32 = 13;

unsafe extern "C" {
    /// C's `signal(2)`; `handler` is a `sighandler_t`.
    fn signal(signum: i32, handler: usize) -> usize;
    /// C's `poll(2)`; `nfds` is an `nfds_t`.
    fn poll(fds: *mut PollFd, nfds: u64, timeout: i32) -> i32;
}

fn ignore_sigpipe() {
    // SAFETY: setting a standard signal's disposition to SIG_IGN, before any thread exists.
    unsafe {
        signal(SIGPIPE, SIG_IGN);
    }
}
