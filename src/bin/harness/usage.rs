//! `harness usage daily | sessions | blocks [--json]`: token usage and what it would cost at API
//! list prices, read straight from Claude Code's transcripts, in the shapes ccusage prints
//! (its JSON keys too), so the two can be compared line by line. Tokens are counted by the same
//! reader as quota (`usage::transcript`), whose totals equal ccusage's; costs come from the dated
//! table in `route::prices`, not from ccusage's, so they may differ.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agent_harness::quota::FIVE_HOURS_MS;
use agent_harness::route::prices::{self, Tokens as PriceTokens};
use agent_harness::usage::transcript::{UsageEntry, find_transcripts, scan_all};
use chrono::{DateTime, Local};
use serde_json::{Value, json};

use crate::fmt::{self, col, num};
use crate::{CliResult, Exit, say};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    report: Report,
    /// One JSON object (ccusage's shape) instead of the table.
    #[arg(long, global = true)]
    json: bool,
    /// Claude Code's config directory (the transcripts are under its `projects/`); default
    /// `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
    #[arg(long, global = true, value_name = "DIR")]
    claude_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Clone, Copy)]
enum Report {
    /// One line per local day.
    Daily,
    /// One line per session.
    Sessions,
    /// One line per 5-hour block (as Claude's rate limits count them).
    Blocks,
}

/// Token counts and cost of a group of responses, per model.
#[derive(Default)]
struct Group {
    models: BTreeMap<String, (PriceTokens, f64)>,
    first_ms: i64,
    last_ms: i64,
    entries: usize,
}

impl Group {
    fn add(&mut self, e: &UsageEntry) {
        let t = PriceTokens {
            input: e.input_tokens,
            output: e.output_tokens,
            cache_write: e.cache_creation_tokens,
            cache_read: e.cache_read_tokens,
        };
        let cost = prices::claude_cost(Some(e.model.as_str()).filter(|m| !m.is_empty()), t);
        let m = self.models.entry(e.model.clone()).or_default();
        m.0.input += t.input;
        m.0.output += t.output;
        m.0.cache_write += t.cache_write;
        m.0.cache_read += t.cache_read;
        m.1 += cost;
        if self.entries == 0 || e.ts_ms < self.first_ms {
            self.first_ms = e.ts_ms;
        }
        self.last_ms = self.last_ms.max(e.ts_ms);
        self.entries += 1;
    }

    fn tokens(&self) -> PriceTokens {
        self.models
            .values()
            .fold(PriceTokens::default(), |a, (t, _)| PriceTokens {
                input: a.input + t.input,
                output: a.output + t.output,
                cache_write: a.cache_write + t.cache_write,
                cache_read: a.cache_read + t.cache_read,
            })
    }

    fn cost(&self) -> f64 {
        self.models.values().map(|(_, c)| c).sum()
    }

    /// ccusage's token keys, `totalTokens` and `totalCost`.
    fn counts_json(&self) -> serde_json::Map<String, Value> {
        let t = self.tokens();
        let mut m = serde_json::Map::new();
        m.insert("inputTokens".into(), json!(t.input));
        m.insert("outputTokens".into(), json!(t.output));
        m.insert("cacheCreationTokens".into(), json!(t.cache_write));
        m.insert("cacheReadTokens".into(), json!(t.cache_read));
        m.insert("totalTokens".into(), json!(total(t)));
        m.insert("totalCost".into(), json!(round(self.cost())));
        m
    }

    fn models_json(&self) -> (Value, Value) {
        let names: Vec<&String> = self.models.keys().filter(|m| !m.is_empty()).collect();
        let breakdowns: Vec<Value> = self
            .models
            .iter()
            .map(|(name, (t, c))| {
                json!({
                    "modelName": name, "inputTokens": t.input, "outputTokens": t.output,
                    "cacheCreationTokens": t.cache_write, "cacheReadTokens": t.cache_read,
                    "cost": round(*c),
                })
            })
            .collect();
        (json!(names), json!(breakdowns))
    }
}

fn total(t: PriceTokens) -> u64 {
    t.input + t.output + t.cache_write + t.cache_read
}

/// To the micro-dollar, and never -0.0 (an empty f64 sum is -0.0, which JSON shows as `-0.0`).
fn round(usd: f64) -> f64 {
    (usd * 1_000_000.0).round() / 1_000_000.0 + 0.0
}

fn local_day(ts_ms: i64) -> String {
    DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.with_timezone(&Local).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The 5-hour blocks of `entries` (oldest first), as ccusage forms them: a block starts at the
/// hour of its first response and takes every response before its end that comes less than 5
/// hours after the previous one.
fn blocks(entries: &[UsageEntry]) -> Vec<(i64, Group)> {
    let mut out: Vec<(i64, Group)> = Vec::new();
    for e in entries {
        match out.last_mut() {
            Some((start, g))
                if e.ts_ms < *start + FIVE_HOURS_MS && e.ts_ms - g.last_ms < FIVE_HOURS_MS =>
            {
                g.add(e)
            }
            _ => {
                let start = e.ts_ms - e.ts_ms.rem_euclid(3_600_000);
                let mut g = Group::default();
                g.add(e);
                out.push((start, g));
            }
        }
    }
    out
}

/// The whole report as JSON (ccusage's shape), for `--json` and for tests.
fn report_json(report: Report, entries: &[UsageEntry], now: i64) -> Value {
    let mut all = Group::default();
    for e in entries {
        all.add(e);
    }
    let totals = Value::Object(all.counts_json());
    match report {
        Report::Daily | Report::Sessions => {
            let mut groups = BTreeMap::<String, Group>::new();
            for e in entries {
                let key = match report {
                    Report::Daily => local_day(e.ts_ms),
                    _ => e.session_id.clone(),
                };
                groups.entry(key).or_default().add(e);
            }
            let (list_key, item_key) = match report {
                Report::Daily => ("daily", "date"),
                _ => ("sessions", "sessionId"),
            };
            let mut items: Vec<(i64, Value)> = groups
                .iter()
                .map(|(k, g)| {
                    let mut m = serde_json::Map::new();
                    m.insert(item_key.into(), json!(k));
                    m.extend(g.counts_json());
                    let (names, breakdowns) = g.models_json();
                    if matches!(report, Report::Sessions) {
                        m.insert("lastActivity".into(), json!(local_day(g.last_ms)));
                    }
                    m.insert("modelsUsed".into(), names);
                    m.insert("modelBreakdowns".into(), breakdowns);
                    (g.last_ms, Value::Object(m))
                })
                .collect();
            if matches!(report, Report::Sessions) {
                items.sort_by_key(|(last, _)| *last);
            }
            json!({ list_key: items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "totals": totals })
        }
        Report::Blocks => {
            let mut sorted: Vec<&UsageEntry> = entries.iter().collect();
            sorted.sort_by_key(|e| e.ts_ms);
            let sorted: Vec<UsageEntry> = sorted.into_iter().cloned().collect();
            let list: Vec<Value> = blocks(&sorted)
                .iter()
                .map(|(start, g)| {
                    let t = g.tokens();
                    let (names, _) = g.models_json();
                    json!({
                        "id": fmt::rfc3339(*start), "startTime": fmt::rfc3339(*start),
                        "endTime": fmt::rfc3339(start + FIVE_HOURS_MS),
                        "actualEndTime": fmt::rfc3339(g.last_ms),
                        "isActive": start + FIVE_HOURS_MS > now && now - g.last_ms < FIVE_HOURS_MS,
                        "isGap": false, "entries": g.entries,
                        "tokenCounts": {
                            "inputTokens": t.input, "outputTokens": t.output,
                            "cacheCreationInputTokens": t.cache_write,
                            "cacheReadInputTokens": t.cache_read,
                        },
                        "totalTokens": total(t), "costUSD": round(g.cost()), "models": names,
                    })
                })
                .collect();
            json!({ "blocks": list, "totals": totals })
        }
    }
}

pub fn run(args: Args) -> CliResult {
    let dir = match args.claude_dir {
        Some(d) => d,
        None => agent_harness::paths::claude_config_dir()
            .ok_or("cannot find Claude Code's config directory: set HOME or CLAUDE_CONFIG_DIR, or pass --claude-dir")?,
    };
    let scan = scan_all(&find_transcripts(&dir));
    for (path, e) in &scan.errors {
        eprintln!(
            "harness: skipped {}: {e}",
            agent_harness::text::one_line(&path.to_string_lossy())
        );
    }
    let v = report_json(args.report, &scan.entries, agent_harness::time::now_ms());
    let mut out = fmt::out();
    if args.json {
        out.json(&v)?;
        return Ok(Exit::Ok);
    }
    let (list, key, head) = match args.report {
        Report::Daily => ("daily", "date", "date"),
        Report::Sessions => ("sessions", "sessionId", "session"),
        Report::Blocks => ("blocks", "startTime", "block start"),
    };
    let cols = [
        col(head, 40),
        col("models", 40),
        num("input", 14),
        num("output", 14),
        num("cache write", 14),
        num("cache read", 14),
        num("total", 14),
        num("cost (USD)", 12),
    ];
    let mut table = fmt::Table::new(&cols);
    let n = |v: &Value| v.as_u64().unwrap_or(0).to_string();
    let items = v[list].as_array().cloned().unwrap_or_default();
    for item in &items {
        let (input, output, cw, cr) = match args.report {
            Report::Blocks => {
                let t = &item["tokenCounts"];
                (
                    n(&t["inputTokens"]),
                    n(&t["outputTokens"]),
                    n(&t["cacheCreationInputTokens"]),
                    n(&t["cacheReadInputTokens"]),
                )
            }
            _ => (
                n(&item["inputTokens"]),
                n(&item["outputTokens"]),
                n(&item["cacheCreationTokens"]),
                n(&item["cacheReadTokens"]),
            ),
        };
        let models = item
            .get("modelsUsed")
            .or_else(|| item.get("models"))
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let cost = item["totalCost"]
            .as_f64()
            .or_else(|| item["costUSD"].as_f64())
            .unwrap_or(0.0);
        table.row(vec![
            item[key].as_str().unwrap_or("").to_owned(),
            models,
            input,
            output,
            cw,
            cr,
            n(&item["totalTokens"]),
            format!("{cost:.2}"),
        ]);
    }
    let t = &v["totals"];
    table.row(vec![
        "total".into(),
        String::new(),
        n(&t["inputTokens"]),
        n(&t["outputTokens"]),
        n(&t["cacheCreationTokens"]),
        n(&t["cacheReadTokens"]),
        n(&t["totalTokens"]),
        format!("{:.2}", t["totalCost"].as_f64().unwrap_or(0.0)),
    ]);
    if items.is_empty() {
        say!(
            out,
            "No Claude Code usage under {}/projects.",
            fmt::path(&dir.to_string_lossy())
        )?;
        return Ok(Exit::Ok);
    }
    table.print(&mut out)?;
    say!(
        out,
        "Costs at API list prices of {} (a subscription is billed differently).",
        prices::PRICES_DATE
    )?;
    Ok(Exit::Ok)
}
