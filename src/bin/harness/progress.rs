//! Progress on long work, for a person at a terminal: one line on stderr that says what is being
//! waited for and for how long, redrawn in place, erased when the work is done. Nothing at all
//! when stderr is not a terminal (piped, in CI, run by the model through its Bash tool), and
//! never in hooks (they do not use this module).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long work may take before any progress shows (quick work stays silent).
const QUIET_FOR: Duration = Duration::from_millis(300);

/// A progress line, shown while it lives.
pub struct Progress {
    done: Arc<AtomicBool>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `what` (e.g. "reading transcripts") with the time spent so far.
    pub fn start(what: &str) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { done, drawer: None };
        }
        // Our own words, never recorded text: nothing to neutralise.
        let what = what.to_owned();
        let flag = done.clone();
        let drawer = std::thread::spawn(move || {
            let began = Instant::now();
            let mut shown = false;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if began.elapsed() < QUIET_FOR || flag.load(Ordering::Relaxed) {
                    continue;
                }
                let secs = began.elapsed().as_secs_f64();
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{what}… {secs:.1} s");
                shown = true;
            }
            if shown {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            }
        });
        Progress {
            done,
            drawer: Some(drawer),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}
