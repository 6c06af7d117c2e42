//! OTLP/HTTP: where requests go (the OpenTelemetry exporter variables, the config, the command
//! line) and how one is sent: POST of JSON, retried with exponential backoff on 429, 502, 503,
//! 504 (and 500, which a restarting collector answers too) or no answer, honouring
//! `Retry-After`; a partial success is read and reported, never retried (the spec says the
//! rejected items will not be accepted later).
//!
//! Owns the network. ureq (blocking, no async runtime) is linked into the `harness` binary only:
//! nothing on a hook's path calls this module.

use std::time::{Duration, Instant};

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Metrics => "v1/metrics",
            Signal::Logs => "v1/logs",
        }
    }

    fn env_name(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    /// The field of a partial success that counts what was rejected.
    fn rejected_field(self) -> &'static str {
        match self {
            Signal::Traces => "rejectedSpans",
            Signal::Metrics => "rejectedDataPoints",
            Signal::Logs => "rejectedLogRecords",
        }
    }
}

/// Where one signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// The base URL with the signal's path appended, as the OTLP exporter spec says for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: `http://h:4318` and `http://h:4318/` both give
/// `http://h:4318/v1/traces`; `http://h/otlp` gives `http://h/otlp/v1/traces`.
pub fn signal_url(base: &str, signal: Signal) -> String {
    if base.ends_with('/') {
        format!("{base}{}", signal.path())
    } else {
        format!("{base}/{}", signal.path())
    }
}

/// Parses `OTEL_EXPORTER_OTLP_HEADERS`: `key1=value1,key2=value2`, W3C Baggage style (spaces
/// around items trimmed, values percent-decoded).
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("a header must be key=value (got {item:?})"));
        };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(format!("{k:?} is not a header name"));
        }
        out.push((k.to_owned(), percent_decode(v.trim())?));
    }
    Ok(out)
}

fn percent_decode(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(n) = u8::from_str_radix(hex, 16) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("header value {v:?} is not UTF-8 once decoded"))
}

/// What the user chose, before the environment is consulted.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    /// `--endpoint`: a base URL.
    pub endpoint: Option<String>,
    /// `--header K=V`, in order.
    pub headers: Vec<(String, String)>,
    /// `export.otlp.endpoint`.
    pub config_endpoint: Option<String>,
    /// `export.otlp.headers`.
    pub config_headers: Vec<(String, String)>,
}

/// Where `signal` goes: `--endpoint` (base), else `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` (used
/// as it is), else `OTEL_EXPORTER_OTLP_ENDPOINT` (base), else `export.otlp.endpoint` (base), else
/// `http://localhost:4318`. Headers: the config's, then `OTEL_EXPORTER_OTLP_HEADERS`, then
/// `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS`, then `--header`; a later one replaces an earlier one of
/// the same name.
pub fn target(
    choice: &Choice,
    signal: Signal,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Target, String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let signal_var = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_name());
    let url = if let Some(base) = &choice.endpoint {
        signal_url(base, signal)
    } else if let Some(url) = var(&signal_var) {
        url
    } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        signal_url(base.trim(), signal)
    } else if let Some(base) = &choice.config_endpoint {
        signal_url(base, signal)
    } else {
        signal_url("http://localhost:4318", signal)
    };
    let url = url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "the OTLP endpoint must be an http:// or https:// URL (got {url:?}); set --endpoint, \
             OTEL_EXPORTER_OTLP_ENDPOINT or export.otlp.endpoint"
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut add = |list: Vec<(String, String)>| {
        for (k, v) in list {
            headers.retain(|(old, _)| !old.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
    };
    add(choice.config_headers.clone());
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        format!("OTEL_EXPORTER_OTLP_{}_HEADERS", signal.env_name()),
    ] {
        if let Some(text) = var(&name) {
            add(parse_headers(&text).map_err(|e| format!("{name}: {e}"))?);
        }
    }
    add(choice.headers.clone());
    Ok(Target { url, headers })
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Give up on a request after retrying this long.
    pub budget: Duration,
    /// The first wait; doubled each time up to `max_wait`.
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// No collector listening at all (connection refused, unknown host) ends the request at
    /// once instead of retrying: for the first request of a one-shot export, where that almost
    /// always means none was started or the endpoint is wrong. Off for `--follow` and once a
    /// request got through, where it means a collector restarting.
    pub unreachable_is_final: bool,
}

/// A request the collector took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items it rejected for good (a partial success), and its message.
    pub rejected: i64,
    pub message: Option<String>,
    /// How many tries it took.
    pub tries: u32,
}

/// Why a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The collector refused it for good (400, 401, 403, 404, 413, ...).
    Refused { status: u16, body: String },
    /// Still failing when the retry budget ran out.
    GaveUp { last: String, tries: u32 },
    /// Nothing listens at the endpoint (only with `Retry::unreachable_is_final`). `endpoint` is
    /// the base URL, `why` what failed ("connection refused", "host not found").
    Unreachable { endpoint: String, why: String },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused { status, body } => write!(
                f,
                "the collector refused the request with HTTP {status}: {} (check the endpoint \
                 and the headers: an API key, ...)",
                crate::text::clip(body, 200)
            ),
            SendError::GaveUp { last, tries } => write!(
                f,
                "the collector did not take the request after {tries} tries ({last}); nothing \
                 was skipped: the next run starts again there"
            ),
            SendError::Unreachable { endpoint, why } => write!(
                f,
                "no OTLP collector at {endpoint} ({why}): start one, pass --endpoint URL, or \
                 set OTEL_EXPORTER_OTLP_ENDPOINT; nothing was sent and no cursor moved"
            ),
        }
    }
}

/// The blocking HTTP client.
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("agent-harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent }
    }

    /// POSTs `body` to the target, retrying what may succeed later. `on_wait` hears each wait
    /// (what failed, how long), for the terminal.
    pub fn send(
        &self,
        target: &Target,
        signal: Signal,
        body: &[u8],
        retry: Retry,
        mut on_wait: impl FnMut(&str, Duration),
    ) -> Result<Accepted, SendError> {
        let began = Instant::now();
        let mut wait = retry.first_wait;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let mut req = self
                .agent
                .post(&target.url)
                .header("Content-Type", "application/json");
            for (k, v) in &target.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let (problem, retry_after) = match req.send(body) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let text = resp
                        .body_mut()
                        .with_config()
                        .limit(1024 * 1024)
                        .read_to_string()
                        .unwrap_or_default();
                    if (200..300).contains(&status) {
                        let (rejected, message) = partial_success(&text, signal);
                        return Ok(Accepted {
                            rejected,
                            message,
                            tries,
                        });
                    }
                    if !matches!(status, 429 | 500 | 502 | 503 | 504) {
                        return Err(SendError::Refused { status, body: text });
                    }
                    (format!("HTTP {status}"), retry_after)
                }
                Err(e) => {
                    if retry.unreachable_is_final
                        && tries == 1
                        && let Some(why) = unreachable(&e)
                    {
                        return Err(SendError::Unreachable {
                            endpoint: base_url(&target.url, signal).to_string(),
                            why: why.to_string(),
                        });
                    }
                    (e.to_string(), None)
                }
            };
            let pause = retry_after.unwrap_or(wait).min(Duration::from_secs(600));
            if began.elapsed() + pause > retry.budget {
                return Err(SendError::GaveUp {
                    last: problem,
                    tries,
                });
            }
            on_wait(&problem, pause);
            std::thread::sleep(pause);
            wait = (wait * 2).min(retry.max_wait);
        }
    }
}

/// Whether `e` says nothing listens at the address (as opposed to a collector that is slow or
/// failing), and how to say it.
fn unreachable(e: &ureq::Error) -> Option<&'static str> {
    match e {
        ureq::Error::HostNotFound => Some("host not found"),
        ureq::Error::ConnectionFailed => Some("connection failed"),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => Some("connection refused"),
            std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                Some("unreachable")
            }
            // std's resolver says this with no kind of its own.
            _ if io.to_string().contains("failed to lookup address") => Some("host not found"),
            _ => None,
        },
        _ => None,
    }
}

/// The base URL a signal URL was made from (the inverse of `signal_url`).
fn base_url(url: &str, signal: Signal) -> &str {
    url.strip_suffix(signal.path())
        .map(|b| b.strip_suffix('/').unwrap_or(b))
        .filter(|b| !b.is_empty())
        .unwrap_or(url)
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = when.timestamp_millis() - crate::time::now_ms();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// A 2xx body's `partialSuccess`: how many items were rejected, and why.
fn partial_success(body: &str, signal: Signal) -> (i64, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return (0, None);
    };
    let Some(p) = v.get("partialSuccess") else {
        return (0, None);
    };
    let n = p.get(signal.rejected_field());
    let rejected = n
        .and_then(|n| {
            n.as_i64()
                .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0);
    let message = p
        .get("errorMessage")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    (rejected, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_paths_follow_the_spec() {
        assert_eq!(
            signal_url("http://h:4318", Signal::Traces),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            signal_url("http://h:4318/", Signal::Logs),
            "http://h:4318/v1/logs"
        );
        assert_eq!(
            signal_url("https://h/otlp", Signal::Metrics),
            "https://h/otlp/v1/metrics"
        );
        // The error for a missing collector names the base URL the user gave.
        assert_eq!(
            base_url("http://h:4318/v1/traces", Signal::Traces),
            "http://h:4318"
        );
        assert_eq!(
            base_url("https://h/otlp/v1/logs", Signal::Logs),
            "https://h/otlp"
        );
        assert_eq!(
            base_url("https://h/custom", Signal::Logs),
            "https://h/custom"
        );
    }

    #[test]
    fn an_unknown_host_fails_a_first_request_at_once() {
        let target = Target {
            url: "http://nonexistent.invalid:4318/v1/traces".into(),
            headers: Vec::new(),
        };
        let retry = Retry {
            budget: Duration::from_secs(60),
            first_wait: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            unreachable_is_final: true,
        };
        let began = Instant::now();
        let got = Client::new(Duration::from_secs(5)).send(
            &target,
            Signal::Traces,
            b"{}",
            retry,
            |p, _| panic!("retried: {p}"),
        );
        assert_eq!(
            got,
            Err(SendError::Unreachable {
                endpoint: "http://nonexistent.invalid:4318".into(),
                why: "host not found".into()
            })
        );
        assert!(began.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_environment_and_the_command_line_choose_in_order() {
        let env = |k: &str| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://env:4318".into()),
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" => Some("http://logs:1/custom".into()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=a%20b, x=1".into()),
            _ => None,
        };
        let mut c = Choice {
            config_endpoint: Some("http://cfg".into()),
            config_headers: vec![("x".into(), "0".into()), ("y".into(), "2".into())],
            ..Choice::default()
        };
        let t = target(&c, Signal::Traces, env).unwrap();
        assert_eq!(t.url, "http://env:4318/v1/traces");
        assert_eq!(
            t.headers,
            vec![
                ("y".into(), "2".into()),
                ("api-key".into(), "a b".into()),
                ("x".into(), "1".into())
            ]
        );
        assert_eq!(
            target(&c, Signal::Logs, env).unwrap().url,
            "http://logs:1/custom"
        );
        c.endpoint = Some("http://cli:9/".into());
        c.headers = vec![("x".into(), "cli".into())];
        let t = target(&c, Signal::Logs, env).unwrap();
        assert_eq!(t.url, "http://cli:9/v1/logs");
        assert!(t.headers.contains(&("x".into(), "cli".into())));
        assert_eq!(
            target(&Choice::default(), Signal::Traces, |_| None)
                .unwrap()
                .url,
            "http://localhost:4318/v1/traces"
        );
        assert!(parse_headers("novalue").is_err());
    }

    #[test]
    fn retry_after_and_partial_success_are_read() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            partial_success(
                r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}}"#,
                Signal::Traces
            ),
            (2, Some("bad".into()))
        );
        assert_eq!(partial_success("{}", Signal::Traces), (0, None));
    }
}
