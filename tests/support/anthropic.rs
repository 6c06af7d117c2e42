//! A mock of the Anthropic Messages API for the real `claude` program: scripted turns streamed as
//! server-sent events like the real API, or errors (429 with the rate-limit headers), with every
//! request recorded so a test can assert what the client sent to the model.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// One content block of a scripted reply.
#[derive(Debug, Clone)]
pub enum Block {
    Text(String),
    Tool { name: String, input: Value },
}

/// One scripted answer to a model request.
#[derive(Debug, Clone)]
pub enum Turn {
    Reply(Vec<Block>),
    /// An HTTP error with a JSON body and headers.
    Error {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
}

impl Turn {
    pub fn text(t: &str) -> Turn {
        Turn::Reply(vec![Block::Text(t.into())])
    }

    pub fn tool(name: &str, input: Value) -> Turn {
        Turn::Reply(vec![Block::Tool {
            name: name.into(),
            input,
        }])
    }

    /// A 429 as the API sends it to an API-key user, with the unified rate-limit headers.
    pub fn rate_limited() -> Turn {
        let reset = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600)
            .to_string();
        Turn::Error {
            status: 429,
            body: json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "This request would exceed your account's rate limit. Please try again later."}}),
            headers: vec![
                ("retry-after".into(), "3600".into()),
                (
                    "anthropic-ratelimit-unified-status".into(),
                    "rejected".into(),
                ),
                (
                    "anthropic-ratelimit-unified-5h-utilization".into(),
                    "1.0".into(),
                ),
                ("anthropic-ratelimit-unified-5h-reset".into(), reset.clone()),
                ("anthropic-ratelimit-unified-reset".into(), reset),
            ],
        }
    }
}

/// Which requests take the next scripted turn; the others get a short default answer.
pub type Consumes = dyn Fn(&Value) -> bool + Send + Sync;

pub struct AnthropicMock {
    pub server: Server,
    script: Arc<Mutex<VecDeque<Turn>>>,
}

/// The main agent loop and subagents send their tools; side requests (titles, summaries of
/// tool use, topic checks) send none.
pub fn agent_request(body: &Value) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
}

impl AnthropicMock {
    pub fn start(script: Vec<Turn>) -> AnthropicMock {
        AnthropicMock::start_with(script, Box::new(agent_request))
    }

    pub fn start_with(script: Vec<Turn>, consumes: Box<Consumes>) -> AnthropicMock {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let counter = Arc::new(AtomicUsize::new(0));
        let s = script.clone();
        let server = Server::start(move |req| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            handle(req, n, &s, &*consumes)
        });
        AnthropicMock { server, script }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The requests to the Messages endpoint, in order.
    pub fn message_requests(&self) -> Vec<Value> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v1/messages") && !r.path.contains("count_tokens"))
            .map(Request::json)
            .collect()
    }

    /// Scripted turns not yet used.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }

    /// Appends turns to the script.
    pub fn push(&self, turns: Vec<Turn>) {
        self.script.lock().unwrap().extend(turns);
    }
}

fn handle(
    req: &Request,
    n: usize,
    script: &Mutex<VecDeque<Turn>>,
    consumes: &Consumes,
) -> Response {
    if req.path.starts_with("/v1/messages/count_tokens") {
        return Response::json(200, &json!({"input_tokens": 100}));
    }
    if !req.path.starts_with("/v1/messages") {
        return Response::json(
            404,
            &json!({"type": "error", "error": {"type": "not_found_error", "message": "mock: no such endpoint"}}),
        );
    }
    let body = req.json();
    let turn = if consumes(&body) {
        script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Turn::text("(mock script exhausted)"))
    } else {
        Turn::text("OK.")
    };
    let model = body["model"].as_str().unwrap_or("claude-mock").to_owned();
    let blocks = match turn {
        Turn::Error {
            status,
            body,
            headers,
        } => {
            let mut r =
                Response::json(status, &body).with_header("request-id", &format!("req_mock{n}"));
            for (k, v) in headers {
                r = r.with_header(&k, &v);
            }
            return r;
        }
        Turn::Reply(blocks) => blocks,
    };
    let id = format!("msg_mock{n:04}");
    let has_tool = blocks.iter().any(|b| matches!(b, Block::Tool { .. }));
    let stop_reason = if has_tool { "tool_use" } else { "end_turn" };
    let usage = json!({"input_tokens": 1200, "cache_creation_input_tokens": 0,
                       "cache_read_input_tokens": 500, "output_tokens": 80});
    let content: Vec<Value> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Block::Text(t) => json!({"type": "text", "text": t}),
            Block::Tool { name, input } => {
                json!({"type": "tool_use", "id": format!("toolu_mock{n:04}_{i}"), "name": name, "input": input})
            }
        })
        .collect();
    if body["stream"].as_bool() != Some(true) {
        return Response::json(
            200,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": stop_reason, "stop_sequence": null,
                    "usage": usage}),
        )
        .with_header("request-id", &format!("req_mock{n:04}"));
    }
    let mut events: Vec<(String, Value)> = vec![(
        "message_start".into(),
        json!({"type": "message_start", "message": {"id": id, "type": "message",
               "role": "assistant", "model": model, "content": [], "stop_reason": null,
               "stop_sequence": null, "usage": {"input_tokens": 1200,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 500,
               "output_tokens": 1}}}),
    )];
    for (i, block) in content.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => {
                events.push((
                    "content_block_start".into(),
                    json!({"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}}),
                ));
                events.push((
                    "content_block_delta".into(),
                    json!({"type": "content_block_delta", "index": i,
                           "delta": {"type": "text_delta", "text": block["text"]}}),
                ));
            }
            _ => {
                events.push((
                    "content_block_start".into(),
                    json!({"type": "content_block_start", "index": i,
                           "content_block": {"type": "tool_use", "id": block["id"],
                                             "name": block["name"], "input": {}}}),
                ));
                events.push((
                    "content_block_delta".into(),
                    json!({"type": "content_block_delta", "index": i,
                           "delta": {"type": "input_json_delta",
                                     "partial_json": block["input"].to_string()}}),
                ));
            }
        }
        events.push((
            "content_block_stop".into(),
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    events.push((
        "message_delta".into(),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason,
               "stop_sequence": null}, "usage": {"output_tokens": 80}}),
    ));
    events.push(("message_stop".into(), json!({"type": "message_stop"})));
    Response::sse(&events).with_header("request-id", &format!("req_mock{n:04}"))
}
