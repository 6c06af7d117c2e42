//! OTLP wire types and their JSON encoding (OTLP/HTTP with `Content-Type: application/json`, the
//! protobuf JSON mapping of opentelemetry-proto): lowerCamelCase field names, trace and span ids
//! as hex, 64-bit integers as strings, enums as numbers.
//!
//! Owns only the shape of a request. Every string attribute and body passes through
//! `crate::redact` here, the last step before anything leaves the machine. Must not do IO.

use std::fmt::Write as _;

use super::ids::{SpanId, TraceId, hex};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

/// A key and its value.
pub type Attr = (&'static str, Value);

pub fn s(key: &'static str, v: impl Into<String>) -> Attr {
    (key, Value::Str(v.into()))
}

pub fn i(key: &'static str, v: i64) -> Attr {
    (key, Value::Int(v))
}

/// `SPAN_KIND_INTERNAL`, `SPAN_KIND_CLIENT`.
pub const KIND_INTERNAL: i32 = 1;
pub const KIND_CLIENT: i32 = 3;
/// `STATUS_CODE_UNSET`, `STATUS_CODE_OK`, `STATUS_CODE_ERROR`.
pub const STATUS_UNSET: i32 = 0;
pub const STATUS_OK: i32 = 1;
pub const STATUS_ERROR: i32 = 2;

#[derive(Debug, Clone)]
pub struct SpanEvent {
    pub time_ms: i64,
    pub name: &'static str,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub name: String,
    pub kind: i32,
    pub start_ms: i64,
    pub end_ms: i64,
    pub attrs: Vec<Attr>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<Link>,
    pub status: i32,
    pub status_message: Option<String>,
}

/// A JSON string literal of `text`, redacted.
fn str_lit(out: &mut String, text: &str) {
    let text = crate::redact::redact_str(text);
    // serde_json's escaping of a &str cannot fail.
    out.push_str(&serde_json::to_string(text.as_ref()).unwrap_or_else(|_| "\"\"".into()));
}

fn nanos(out: &mut String, ms: i64) {
    let _ = write!(out, "\"{}\"", (ms.max(0) as u64).saturating_mul(1_000_000));
}

fn any_value(out: &mut String, v: &Value) {
    match v {
        Value::Str(t) => {
            out.push_str("{\"stringValue\":");
            str_lit(out, t);
            out.push('}');
        }
        Value::Int(n) => {
            let _ = write!(out, "{{\"intValue\":\"{n}\"}}");
        }
        Value::Double(d) if d.is_finite() => {
            let _ = write!(out, "{{\"doubleValue\":{d}}}");
        }
        Value::Double(_) => out.push_str("{\"doubleValue\":0}"),
        Value::Bool(b) => {
            let _ = write!(out, "{{\"boolValue\":{b}}}");
        }
    }
}

pub fn attrs(out: &mut String, attrs: &[Attr]) {
    out.push('[');
    for (n, (k, v)) in attrs.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        str_lit(out, k);
        out.push_str(",\"value\":");
        any_value(out, v);
        out.push('}');
    }
    out.push(']');
}

/// One span as JSON, appended to `out`.
pub fn span(out: &mut String, sp: &Span) {
    let _ = write!(
        out,
        "{{\"traceId\":\"{}\",\"spanId\":\"{}\"",
        hex(&sp.trace_id),
        hex(&sp.span_id)
    );
    if let Some(p) = sp.parent {
        let _ = write!(out, ",\"parentSpanId\":\"{}\"", hex(&p));
    }
    out.push_str(",\"name\":");
    str_lit(out, &sp.name);
    let _ = write!(out, ",\"kind\":{},\"startTimeUnixNano\":", sp.kind);
    nanos(out, sp.start_ms);
    out.push_str(",\"endTimeUnixNano\":");
    nanos(out, sp.end_ms.max(sp.start_ms));
    out.push_str(",\"attributes\":");
    attrs(out, &sp.attrs);
    if !sp.events.is_empty() {
        out.push_str(",\"events\":[");
        for (n, e) in sp.events.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str("{\"timeUnixNano\":");
            nanos(out, e.time_ms);
            out.push_str(",\"name\":");
            str_lit(out, e.name);
            out.push_str(",\"attributes\":");
            attrs(out, &e.attrs);
            out.push('}');
        }
        out.push(']');
    }
    if !sp.links.is_empty() {
        out.push_str(",\"links\":[");
        for (n, l) in sp.links.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"traceId\":\"{}\",\"spanId\":\"{}\",\"attributes\":",
                hex(&l.trace_id),
                hex(&l.span_id)
            );
            attrs(out, &l.attrs);
            out.push('}');
        }
        out.push(']');
    }
    let _ = write!(out, ",\"status\":{{\"code\":{}", sp.status);
    if let Some(m) = &sp.status_message {
        out.push_str(",\"message\":");
        str_lit(out, m);
    }
    out.push_str("}}");
}

/// What every request says about where it comes from.
#[derive(Debug, Clone)]
pub struct Resource {
    pub attrs: Vec<Attr>,
}

impl Resource {
    pub fn new(service_name: &str) -> Resource {
        Resource {
            attrs: vec![
                s("service.name", service_name),
                s("service.version", env!("CARGO_PKG_VERSION")),
                s("telemetry.sdk.name", "agent-harness"),
                s("telemetry.sdk.language", "rust"),
            ],
        }
    }

    fn head(&self, out: &mut String, outer: &str, scope_key: &str) {
        let _ = write!(out, "{{\"{outer}\":[{{\"resource\":{{\"attributes\":");
        attrs(out, &self.attrs);
        let _ = write!(
            out,
            "}},\"{scope_key}\":[{{\"scope\":{{\"name\":\"agent-harness\",\"version\":\"{}\"}},",
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// An `ExportTraceServiceRequest` around spans already encoded (comma-joined).
pub fn traces_request(resource: &Resource, spans_json: &str) -> String {
    let mut out = String::with_capacity(spans_json.len() + 512);
    resource.head(&mut out, "resourceSpans", "scopeSpans");
    out.push_str("\"spans\":[");
    out.push_str(spans_json);
    out.push_str("]}]}]}");
    out
}

/// An `ExportLogsServiceRequest` around log records already encoded (comma-joined).
pub fn logs_request(resource: &Resource, records_json: &str) -> String {
    let mut out = String::with_capacity(records_json.len() + 512);
    resource.head(&mut out, "resourceLogs", "scopeLogs");
    out.push_str("\"logRecords\":[");
    out.push_str(records_json);
    out.push_str("]}]}]}");
    out
}

/// An `ExportMetricsServiceRequest` around metrics already encoded (comma-joined).
pub fn metrics_request(resource: &Resource, metrics_json: &str) -> String {
    let mut out = String::with_capacity(metrics_json.len() + 512);
    resource.head(&mut out, "resourceMetrics", "scopeMetrics");
    out.push_str("\"metrics\":[");
    out.push_str(metrics_json);
    out.push_str("]}]}]}");
    out
}

/// A log record.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub time_ms: i64,
    pub observed_ms: i64,
    /// 9 INFO, 13 WARN, 17 ERROR.
    pub severity: i32,
    pub severity_text: &'static str,
    pub body: String,
    pub attrs: Vec<Attr>,
    pub trace_id: Option<TraceId>,
}

pub fn log_record(out: &mut String, r: &LogRecord) {
    out.push_str("{\"timeUnixNano\":");
    nanos(out, r.time_ms);
    out.push_str(",\"observedTimeUnixNano\":");
    nanos(out, r.observed_ms);
    let _ = write!(
        out,
        ",\"severityNumber\":{},\"severityText\":\"{}\",\"body\":{{\"stringValue\":",
        r.severity, r.severity_text
    );
    str_lit(out, &r.body);
    out.push_str("},\"attributes\":");
    attrs(out, &r.attrs);
    if let Some(t) = r.trace_id {
        let _ = write!(out, ",\"traceId\":\"{}\"", hex(&t));
    }
    out.push('}');
}

/// One data point of a metric.
#[derive(Debug, Clone)]
pub struct Point {
    pub attrs: Vec<Attr>,
    pub start_ms: Option<i64>,
    pub time_ms: i64,
    pub value: Value,
}

/// A metric: a gauge, or a cumulative monotonic sum.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub sum: bool,
    pub points: Vec<Point>,
}

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: i32 = 2;

pub fn metric(out: &mut String, m: &Metric) {
    out.push_str("{\"name\":");
    str_lit(out, m.name);
    out.push_str(",\"unit\":");
    str_lit(out, m.unit);
    out.push_str(",\"description\":");
    str_lit(out, m.description);
    if m.sum {
        let _ = write!(
            out,
            ",\"sum\":{{\"aggregationTemporality\":{CUMULATIVE},\"isMonotonic\":true,\"dataPoints\":["
        );
    } else {
        out.push_str(",\"gauge\":{\"dataPoints\":[");
    }
    for (n, p) in m.points.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"attributes\":");
        attrs(out, &p.attrs);
        if let Some(start) = p.start_ms {
            out.push_str(",\"startTimeUnixNano\":");
            nanos(out, start);
        }
        out.push_str(",\"timeUnixNano\":");
        nanos(out, p.time_ms);
        match &p.value {
            Value::Int(n) => {
                let _ = write!(out, ",\"asInt\":\"{n}\"");
            }
            Value::Double(d) => {
                let _ = write!(
                    out,
                    ",\"asDouble\":{}",
                    if d.is_finite() { *d } else { 0.0 }
                );
            }
            _ => out.push_str(",\"asInt\":\"0\""),
        }
        out.push('}');
    }
    out.push_str("]}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_valid_json_with_hex_ids_and_string_nanos() {
        let sp = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "execute_tool Bash".into(),
            kind: KIND_INTERNAL,
            start_ms: 1000,
            end_ms: 1500,
            attrs: vec![s("gen_ai.tool.name", "Bash"), i("n", 3)],
            events: vec![],
            links: vec![],
            status: STATUS_OK,
            status_message: None,
        };
        let mut out = String::new();
        span(&mut out, &sp);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["traceId"], "01".repeat(16));
        assert_eq!(v["parentSpanId"], "03".repeat(8));
        assert_eq!(v["startTimeUnixNano"], "1000000000");
        assert_eq!(v["attributes"][1]["value"]["intValue"], "3");
    }

    #[test]
    fn strings_are_redacted_on_the_way_out() {
        let mut out = String::new();
        attrs(
            &mut out,
            &[s(
                "x",
                "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
            )],
        );
        assert!(!out.contains("abcdefghijklmnop"), "{out}");
    }
}
