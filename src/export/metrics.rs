//! The metrics: a snapshot of the store's totals, sent whole each round (cumulative sums start at
//! the first recorded event, so a resend is harmless): quota per provider and window (a gauge,
//! official or estimated), tokens and list-price cost per model, lock denials, delegations and
//! review verdicts (monotonic sums).

use rusqlite::Connection;

use super::otlp::{self, Metric, Point, Value, s};
use crate::route::prices;

/// Every metric, as of `now_ms`.
pub fn snapshot(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Metric>> {
    let start = crate::store::export::first_event_ms(conn)?.unwrap_or(now_ms);
    let point = |attrs: Vec<otlp::Attr>, value: Value| Point {
        attrs,
        start_ms: Some(start),
        time_ms: now_ms,
        value,
    };
    let mut quota = Vec::new();
    for f in crate::store::quota::figures(conn)? {
        let Some(pct) = f.used_pct else { continue };
        quota.push(Point {
            attrs: vec![
                s(
                    "gen_ai.provider.name",
                    if f.provider == "gemini" {
                        "gcp.gemini"
                    } else {
                        "anthropic"
                    },
                ),
                s("harness.quota.window", f.window),
                s("harness.quota.source", f.source),
                s(
                    "harness.quota.provenance",
                    if f.official { "official" } else { "estimated" },
                ),
            ],
            start_ms: None,
            time_ms: f.observed_ms,
            value: Value::Double(pct),
        });
    }
    let mut tokens = Vec::new();
    let mut cost = Vec::new();
    for (model, t, _) in crate::store::export::tokens_per_model(conn)? {
        for (ty, n) in ["input", "output", "cache_creation", "cache_read"]
            .iter()
            .zip(t)
        {
            tokens.push(point(
                vec![
                    s("gen_ai.provider.name", "anthropic"),
                    s("gen_ai.request.model", model.clone()),
                    s("gen_ai.token.type", *ty),
                ],
                Value::Int(n),
            ));
        }
        let usd = prices::claude_cost(
            Some(&model),
            prices::Tokens {
                input: t[0] as u64,
                output: t[1] as u64,
                cache_write: t[2] as u64,
                cache_read: t[3] as u64,
            },
        );
        cost.push(point(
            vec![
                s("gen_ai.provider.name", "anthropic"),
                s("gen_ai.request.model", model),
                s("harness.prices.date", prices::PRICES_DATE),
            ],
            Value::Double(usd),
        ));
    }
    for (model, input, output, _) in crate::store::export::run_tokens_per_model(conn)? {
        for (ty, n) in [("input", input), ("output", output)] {
            tokens.push(point(
                vec![
                    s("gen_ai.provider.name", "gcp.gemini"),
                    s("gen_ai.request.model", model.clone()),
                    s("gen_ai.token.type", ty),
                ],
                Value::Int(n),
            ));
        }
        let usd = prices::gemini_cost(prices::Tokens {
            input: input as u64,
            output: output as u64,
            ..Default::default()
        });
        cost.push(point(
            vec![
                s("gen_ai.provider.name", "gcp.gemini"),
                s("gen_ai.request.model", model),
                s("harness.prices.date", prices::PRICES_DATE),
            ],
            Value::Double(usd),
        ));
    }
    let mut denials = Vec::new();
    let mut delegations = Vec::new();
    let mut verdicts = Vec::new();
    for (name, attr, n) in crate::store::export::counters(conn)? {
        match name {
            "lock_denials" => denials.push(point(vec![], Value::Int(n))),
            "delegations" => {
                delegations.push(point(vec![s("harness.run.status", attr)], Value::Int(n)))
            }
            _ => verdicts.push(point(
                vec![s("harness.review.verdict", attr)],
                Value::Int(n),
            )),
        }
    }
    let m = |name, unit, description, sum, points: Vec<Point>| Metric {
        name,
        unit,
        description,
        sum,
        points,
    };
    Ok(vec![
        m(
            "harness.quota.used",
            "%",
            "Share of a provider's quota window used",
            false,
            quota,
        ),
        m(
            "harness.tokens",
            "{token}",
            "Tokens used, per model and type",
            true,
            tokens,
        ),
        m(
            "harness.cost",
            "USD",
            "What the tokens cost at list price (route::prices)",
            true,
            cost,
        ),
        m(
            "harness.lock.denials",
            "{denial}",
            "Writes denied because another agent held the file",
            true,
            denials,
        ),
        m(
            "harness.delegations",
            "{run}",
            "Gemini runs the harness started, by status",
            true,
            delegations,
        ),
        m(
            "harness.review.verdicts",
            "{review}",
            "Review verdicts",
            true,
            verdicts,
        ),
    ]
    .into_iter()
    .filter(|m| !m.points.is_empty())
    .collect())
}
