//! `harness export otlp`: sends what the store records to an OpenTelemetry collector over
//! OTLP/HTTP (JSON), from where the last export stopped; `--follow` keeps doing it, `--dry-run`
//! prints the requests instead.

use std::time::Duration;

use agent_harness::export::http::{self, Accepted, Client, Retry, Signal, Target};
use agent_harness::export::{self, ExportError, Options, Report, Sink};
use agent_harness::store::export as q;
use agent_harness::time::now_ms;

use crate::fmt::{self, Out};
use crate::{CliError, CliResult, Exit, config, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    target: Target_,
}

#[derive(clap::Subcommand)]
enum Target_ {
    /// OpenTelemetry over OTLP/HTTP (JSON): traces, metrics and logs.
    Otlp(OtlpArgs),
}

#[derive(clap::Args)]
pub struct OtlpArgs {
    /// The collector's base URL (`/v1/traces`, ... are appended). Default:
    /// OTEL_EXPORTER_OTLP_ENDPOINT, else export.otlp.endpoint, else http://localhost:4318.
    #[arg(long)]
    endpoint: Option<String>,
    /// A header for every request, KEY=VALUE (repeatable), after OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Only what was recorded since a span ago (10m, 2h, 7d) or a time, when the cursor is
    /// further back.
    #[arg(long)]
    since: Option<String>,
    /// Keep exporting as new records arrive (a long-lived exporter; Ctrl-C or SIGTERM to stop).
    #[arg(short, long)]
    follow: bool,
    /// Print the requests that would be sent (one JSON line each) and move no cursor.
    #[arg(long, conflicts_with = "follow")]
    dry_run: bool,
    /// Only these signals (repeatable). Default all three.
    #[arg(long = "signal", value_enum)]
    signals: Vec<SignalArg>,
    /// Forget the cursors first: export everything again (the collector will see duplicates).
    /// With --dry-run: print everything, and keep the cursors.
    #[arg(long)]
    reset: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SignalArg {
    Traces,
    Metrics,
    Logs,
}

/// The collector, with retries; waits are said on stderr.
struct HttpSink {
    client: Client,
    targets: [Target; 3],
    retry: Retry,
    /// A one-shot export whose first request is still to come: no collector listening then
    /// fails at once (see `Retry::unreachable_is_final`).
    first_of_one_shot: bool,
}

impl Sink for HttpSink {
    fn send(&mut self, signal: Signal, body: &str, _items: usize) -> Result<Accepted, String> {
        let target = match signal {
            Signal::Traces => &self.targets[0],
            Signal::Metrics => &self.targets[1],
            Signal::Logs => &self.targets[2],
        };
        let retry = Retry {
            unreachable_is_final: std::mem::take(&mut self.first_of_one_shot),
            ..self.retry
        };
        self.client
            .send(target, signal, body.as_bytes(), retry, |problem, wait| {
                eprintln!(
                    "harness: {}: {}; trying again in {:.1} s",
                    agent_harness::text::one_line(&target.url),
                    agent_harness::text::one_line(problem),
                    wait.as_secs_f64()
                );
            })
            .map_err(|e| match e {
                // Names the endpoint itself.
                http::SendError::Unreachable { .. } => e.to_string(),
                e => format!("{}: {e}", target.url),
            })
    }
}

/// `--dry-run`: each request printed as one JSON line.
struct Print<'a> {
    out: &'a mut Out,
    /// Set when stdout's reader went away (`| head`): the run ends quietly.
    closed: &'a mut bool,
}

impl Sink for Print<'_> {
    fn send(&mut self, signal: Signal, body: &str, items: usize) -> Result<Accepted, String> {
        let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let line = serde_json::json!({"signal": signal.path(), "items": items, "request": v});
        self.out.json(&line).map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                *self.closed = true;
            }
            e.to_string()
        })?;
        Ok(Accepted::default())
    }

    fn moves_cursor(&self) -> bool {
        false
    }
}

pub fn run(args: Args) -> CliResult {
    let Target_::Otlp(a) = args.target;
    otlp(a)
}

fn otlp(a: OtlpArgs) -> CliResult {
    let config = config()?;
    let c = &config.export.otlp;
    let mut headers = Vec::new();
    for h in &a.headers {
        let parsed = http::parse_headers(h).map_err(|e| format!("--header: {e}"))?;
        if parsed.is_empty() {
            return Err(CliError::Message(format!(
                "--header {h:?}: expected KEY=VALUE"
            )));
        }
        headers.extend(parsed);
    }
    if let Some(e) = &a.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(CliError::Message(format!(
            "--endpoint must be an http:// or https:// URL (got {e:?})"
        )));
    }
    let choice = http::Choice {
        endpoint: a.endpoint.clone(),
        headers,
        config_endpoint: c.endpoint.clone(),
        config_headers: c.headers.clone().into_iter().collect(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let targets =
        [Signal::Traces, Signal::Metrics, Signal::Logs].map(|s| http::target(&choice, s, env));
    let targets = match targets {
        [Ok(t), Ok(m), Ok(l)] => [t, m, l],
        [Err(e), ..] | [_, Err(e), _] | [_, _, Err(e)] => return Err(CliError::Message(e)),
    };
    let mut opts = Options::from_config(c);
    let now = now_ms();
    opts.since_ms = a
        .since
        .as_deref()
        .map(|s| fmt::parse_since(s, now))
        .transpose()?;
    opts.ignore_cursors = a.reset && a.dry_run;
    let want = |s: SignalArg| a.signals.is_empty() || a.signals.contains(&s);
    let mut store = open_store()?;
    // One exporter at a time per store: two would both send what lies past the cursor.
    let _lock = if a.dry_run {
        None
    } else {
        Some(exclusive(store.path())?)
    };
    if a.reset && !a.dry_run {
        for stream in [
            export::TRACES_STREAM,
            export::RUNS_STREAM,
            export::LOG_STREAM,
            export::EVENT_LOG_STREAM,
        ] {
            q::reset_cursor(&mut store, stream)?;
        }
    }
    let mut out = fmt::out();
    let retry = Retry {
        budget: Duration::from_secs(c.retry_secs),
        first_wait: Duration::from_millis(500),
        max_wait: Duration::from_secs(30),
        unreachable_is_final: false,
    };
    let mut http_sink = HttpSink {
        client: Client::new(Duration::from_secs(c.timeout_secs)),
        targets: targets.clone(),
        retry,
        first_of_one_shot: !a.follow,
    };
    let mut stdout_closed = false;
    let interval = Duration::from_secs(c.interval_secs);
    let mut last_metrics = 0i64;
    let mut state = None;
    loop {
        let mut report = Report::default();
        let now = now_ms();
        let result = {
            let mut print;
            let sink: &mut dyn Sink = if a.dry_run {
                print = Print {
                    out: &mut out,
                    closed: &mut stdout_closed,
                };
                &mut print
            } else {
                &mut http_sink
            };
            (|| -> Result<(), ExportError> {
                if want(SignalArg::Traces) {
                    export::export_traces_from(
                        &mut store,
                        sink,
                        &opts,
                        now,
                        &mut report,
                        &mut state,
                    )?;
                }
                // Metrics are a snapshot: at most one a minute when following.
                if want(SignalArg::Metrics) && now - last_metrics >= 60_000 {
                    export::export_metrics(&mut store, sink, &opts, now, &mut report)?;
                    last_metrics = now;
                }
                if want(SignalArg::Logs) {
                    export::export_logs(&mut store, sink, &opts, now, &mut report)?;
                }
                Ok(())
            })()
        };
        if stdout_closed {
            return Err(CliError::BrokenPipe);
        }
        // A failed run says so on its own: a summary first ("Exported 0 spans") reads like
        // success. What a failed round did send is said in its error line.
        if !a.dry_run && result.is_ok() && (!a.follow || report.requests > 0) {
            summary(&mut out, &report, &targets[0].url)?;
        }
        match result {
            Ok(()) => {}
            Err(e) => {
                let mut msg = e.to_string();
                if report.requests > 0 {
                    msg.push_str(&format!(
                        " (before that, {} requests were taken: {} spans, {} metric points, {} \
                         log records; the cursors moved past them)",
                        report.requests, report.spans, report.metric_points, report.log_records
                    ));
                }
                if !a.follow {
                    return Err(CliError::Message(msg));
                }
                eprintln!("harness: export: {}", agent_harness::text::one_line(&msg));
            }
        }
        if !a.follow {
            return Ok(Exit::Ok);
        }
        out.flush()?;
        std::thread::sleep(interval);
    }
}

/// Holds `<store>.export.lock` for the process's life, or says who holds it.
fn exclusive(db: &std::path::Path) -> CliResult<std::fs::File> {
    let path = db.with_extension("export.lock");
    let file = agent_harness::private_file::open(&path, agent_harness::private_file::Mode::Write)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CliError::Message(format!(
            "another `harness export otlp` is running on this store (it holds {}); stop it \
             first, or let it do the exporting",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::Message(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

fn summary(out: &mut Out, r: &Report, url: &str) -> CliResult<()> {
    say!(
        out,
        "Exported {} spans, {} metric points, {} log records in {} requests to {}; {} events \
         read, cursor at event {} ({} open turns and tool calls held back).",
        r.spans,
        r.metric_points,
        r.log_records,
        r.requests,
        url.trim_end_matches("v1/traces").trim_end_matches('/'),
        r.events_read,
        r.through,
        r.open
    )?;
    if r.rejected > 0 {
        say!(
            out,
            "The collector rejected {} items for good (partial success): {}",
            r.rejected,
            r.rejected_messages.join("; ")
        )?;
    }
    Ok(())
}
