//! A mock of the Gemini API (`generateContent` and `streamGenerateContent?alt=sse`) for the real
//! `gemini` program: scripted turns (text, function calls, 429 RESOURCE_EXHAUSTED), every request
//! recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// One scripted answer to a chat request.
#[derive(Debug, Clone)]
pub enum GTurn {
    Text(String),
    Call {
        name: String,
        args: Value,
    },
    /// 429 RESOURCE_EXHAUSTED with a daily quota failure (Gemini CLI does not retry it).
    QuotaExhausted,
}

pub struct GeminiMock {
    pub server: Server,
    script: Arc<Mutex<VecDeque<GTurn>>>,
}

impl GeminiMock {
    pub fn start(script: Vec<GTurn>) -> GeminiMock {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let s = script.clone();
        let server = Server::start(move |req| handle(req, &s));
        GeminiMock { server, script }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The chat (streamGenerateContent) request bodies, in order.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.contains(":streamGenerateContent"))
            .map(Request::json)
            .collect()
    }

    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

fn usage() -> Value {
    json!({"promptTokenCount": 200, "candidatesTokenCount": 20, "totalTokenCount": 220})
}

fn handle(req: &Request, script: &Mutex<VecDeque<GTurn>>) -> Response {
    let model = req
        .path
        .split("/models/")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("gemini-mock")
        .to_owned();
    if req.path.contains(":generateContent") {
        // Utility calls (routing, summaries): a plain short answer.
        return Response::json(
            200,
            &json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "{\"reasoning\":\"mock\",\"model_choice\":\"flash\"}"}]},
                     "finishReason": "STOP", "index": 0}], "usageMetadata": usage(), "modelVersion": model}),
        );
    }
    if !req.path.contains(":streamGenerateContent") {
        return Response::json(
            404,
            &json!({"error": {"code": 404, "message": "mock: no such endpoint", "status": "NOT_FOUND"}}),
        );
    }
    let turn = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| GTurn::Text("(mock script exhausted)".into()));
    let part = match turn {
        GTurn::QuotaExhausted => {
            return Response::json(
                429,
                &json!({"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details.",
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                                     "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}),
            );
        }
        GTurn::Text(t) => json!({"text": t}),
        GTurn::Call { name, args } => json!({"functionCall": {"name": name, "args": args}}),
    };
    Response::sse_data(&[json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage(),
        "modelVersion": model,
    })])
}
