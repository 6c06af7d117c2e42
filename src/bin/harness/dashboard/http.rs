//! The little HTTP/1.1 the dashboard needs: read one bounded request, write one response, then
//! close the connection. No keep-alive, no chunked bodies, no pipelining: a page on 127.0.0.1
//! that makes a handful of requests does not need them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The longest request body accepted (the two actions send a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;
/// How long a whole request (head and body) may take to arrive. A per-read timeout alone lets a
/// client that sends one byte every few seconds hold its connection (and a slot) for hours.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// One parsed request.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path without its query.
    pub path: String,
    /// The query's `key=value` pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed or timed out, or sent nothing usable: answer nothing.
    Gone,
    /// Malformed or too large: answer 400 / 413.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// A stream whose reads all end by one instant: each read waits only for what is left of it.
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Reads one request from `stream`, all of it within [`REQUEST_DEADLINE`].
pub fn read(stream: &TcpStream) -> Result<Request, ReadError> {
    let deadline = Deadline {
        stream,
        until: Instant::now() + REQUEST_DEADLINE,
    };
    let mut reader = BufReader::new(deadline.take((MAX_HEAD + MAX_BODY) as u64));
    let mut head_len = 0;
    let mut line = String::new();
    let mut next_line = |reader: &mut BufReader<_>, line: &mut String| -> Result<(), ReadError> {
        line.clear();
        let n = reader.read_line(line)?;
        head_len += n;
        if n == 0 {
            return Err(ReadError::Gone);
        }
        if head_len > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        Ok(())
    };
    next_line(&mut reader, &mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(400, "HTTP/1.x only"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_owned(),
        path: decode(path),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect(),
        ..Request::default()
    };
    loop {
        next_line(&mut reader, &mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header"));
        };
        req.headers
            .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(411, "send a Content-Length"));
    }
    let len: usize = match req.header("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    req.body = vec![0; len];
    reader.read_exact(&mut req.body)?;
    Ok(req)
}

/// `%xx` and `+` decoded; invalid escapes kept as they are.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                let hex = hex.bytes().all(|c| c.is_ascii_hexdigit()).then_some(hex);
                match hex.map(|h| u8::from_str_radix(h, 16)) {
                    Some(Ok(b)) => {
                        out.push(b);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The headers every response carries: nothing cached, nothing framed, nothing sniffed, no
/// referrer (the URL holds the token), and a policy that allows only this origin's own script,
/// style and requests.
pub const SECURITY_HEADERS: &str = "Cache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: DENY\r\n\
    Referrer-Policy: no-referrer\r\n\
    Cross-Origin-Resource-Policy: same-origin\r\n\
    Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'\r\n";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Writes a whole response and the end of the connection.
pub fn respond(
    mut stream: &TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{SECURITY_HEADERS}\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A JSON response.
pub fn json(stream: &TcpStream, status: u16, v: &serde_json::Value) -> io::Result<()> {
    respond(
        stream,
        status,
        "application/json; charset=utf-8",
        v.to_string().as_bytes(),
    )
}

/// A JSON error: `{"error": "..."}`.
pub fn error(stream: &TcpStream, status: u16, message: &str) -> io::Result<()> {
    json(stream, status, &serde_json::json!({ "error": message }))
}

/// The head of an event stream; the events follow as the caller writes them.
pub fn start_events(mut stream: &TcpStream) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\
         {SECURITY_HEADERS}\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("%2Fx%"), "/x%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%41"), "A");
    }
}
