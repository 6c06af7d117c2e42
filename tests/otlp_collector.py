#!/usr/bin/env python3
"""A strict mock OTLP/HTTP collector for the export tests.

Every request to /v1/traces, /v1/metrics and /v1/logs is parsed with protobuf's
json_format.Parse against the opentelemetry-proto message types, which rejects unknown or
mistyped fields; trace and span ids must be hex of the right length (OTLP/JSON's one departure
from the protobuf JSON mapping). A request that fails is answered 400 and its error kept.

Faults are scripted: POST /control with a JSON list of actions, one per following export
request: {"status": 500}, {"status": 429, "retry_after": "1"}, {"delay": 3}, {"partial": 2}.
GET /dump returns everything accepted (spans, with duplicates counted by span id), and the errors.
Prints its port on the first line of stdout, then serves until killed.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

LOCK = threading.Lock()
STATE = {
    "script": [],
    "requests": {"traces": 0, "metrics": 0, "logs": 0},
    "refused": 0,
    "spans": {},  # span id -> the span as accepted (last copy)
    "span_counts": {},  # span id -> how many times it arrived
    "metrics": [],
    "logs": [],
    "errors": [],
    "started": 0,  # export requests begun (before any scripted delay)
}

TYPES = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest),
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest),
}


def hex_to_b64(obj, key, size):
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64. Strictly converted."""
    if key not in obj:
        return
    value = obj[key]
    if not isinstance(value, str) or len(value) != size * 2:
        raise ValueError(f"{key} must be {size * 2} hex digits, got {value!r}")
    raw = bytes.fromhex(value)
    if raw == bytes(size):
        raise ValueError(f"{key} is all zero (invalid)")
    obj[key] = base64.b64encode(raw).decode()


def normalise_ids(signal, body):
    if signal == "traces":
        for rs in body.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    hex_to_b64(span, "traceId", 16)
                    hex_to_b64(span, "spanId", 8)
                    if "parentSpanId" in span:
                        hex_to_b64(span, "parentSpanId", 8)
                    for link in span.get("links", []):
                        hex_to_b64(link, "traceId", 16)
                        hex_to_b64(link, "spanId", 8)
    if signal == "logs":
        for rl in body.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    hex_to_b64(rec, "traceId", 16)
                    hex_to_b64(rec, "spanId", 8)


def b64_to_hex(v):
    return base64.b64decode(v).hex() if v else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"{}", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def do_GET(self):
        if self.path == "/dump":
            with LOCK:
                out = {
                    "requests": STATE["requests"],
                    "refused": STATE["refused"],
                    "started": STATE["started"],
                    "spans": list(STATE["spans"].values()),
                    "duplicates": sum(n - 1 for n in STATE["span_counts"].values()),
                    "metrics": STATE["metrics"],
                    "logs": STATE["logs"],
                    "errors": STATE["errors"],
                }
            self.reply(200, json.dumps(out).encode())
        else:
            self.reply(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/control":
            with LOCK:
                STATE["script"].extend(json.loads(raw))
            self.reply(200)
            return
        if self.path not in TYPES:
            self.reply(404)
            return
        signal, cls = TYPES[self.path]
        with LOCK:
            STATE["started"] += 1
            action = STATE["script"].pop(0) if STATE["script"] else {}
        if action.get("delay"):
            time.sleep(action["delay"])
        status = action.get("status", 200)
        if status != 200:
            with LOCK:
                STATE["refused"] += 1
            headers = []
            if "retry_after" in action:
                headers.append(("Retry-After", str(action["retry_after"])))
            self.reply(status, b'{"code":14,"message":"scripted"}', headers)
            return
        if self.headers.get("Content-Type") != "application/json":
            self.fail(415, f"Content-Type {self.headers.get('Content-Type')!r}")
            return
        try:
            body = json.loads(raw)
            normalise_ids(signal, body)
            msg = json_format.Parse(json.dumps(body), cls())
        except Exception as e:  # noqa: BLE001 - every failure is the exporter's bug
            self.fail(400, f"{self.path}: {type(e).__name__}: {e}")
            return
        with LOCK:
            STATE["requests"][signal] += 1
            if signal == "traces":
                for rs in msg.resource_spans:
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            d = json_format.MessageToDict(span)
                            d["traceId"] = span.trace_id.hex()
                            d["spanId"] = span.span_id.hex()
                            d["parentSpanId"] = span.parent_span_id.hex() or None
                            d["links"] = [
                                {"traceId": l.trace_id.hex(), "spanId": l.span_id.hex()}
                                for l in span.links
                            ]
                            d["resource"] = json_format.MessageToDict(rs.resource)
                            key = d["spanId"]
                            STATE["span_counts"][key] = STATE["span_counts"].get(key, 0) + 1
                            STATE["spans"][key] = d
            elif signal == "metrics":
                STATE["metrics"].append(json_format.MessageToDict(msg))
            else:
                for rl in msg.resource_logs:
                    for sl in rl.scope_logs:
                        for rec in sl.log_records:
                            STATE["logs"].append(json_format.MessageToDict(rec))
        partial = action.get("partial")
        if partial:
            field = {"traces": "rejectedSpans", "metrics": "rejectedDataPoints", "logs": "rejectedLogRecords"}[signal]
            self.reply(200, json.dumps({"partialSuccess": {field: str(partial), "errorMessage": "scripted partial"}}).encode())
        else:
            self.reply(200, b"{}")

    def fail(self, status, message):
        with LOCK:
            STATE["errors"].append(message)
        self.reply(status, json.dumps({"message": message}).encode())


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
