//! The `overload` scenario: buyers arrive at half the system's capacity,
//! then at twice it, then at half again, and every buyer keeps retrying
//! with its own `Idempotency-Key` (after `Retry-After`, with jitter) until
//! it learns its order's outcome, polling its status as often as the
//! answer's `Retry-After` asks. What it measures is what a rush past
//! capacity costs: what was let in and shed, the latency of what was let
//! in, how long after the rush orders are quick again, and that every
//! buyer who kept trying learned where it stood, with nothing lost or
//! oversold.

use std::time::{Duration, Instant};

use eventsys_api::auth::Role;
use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::json;

use crate::{
    Client, System,
    client::{Reply, event_body},
    scenario::{Figures, Meter, percentile},
};

/// How one run is shaped.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Orders a second the system completes when not overloaded.
    pub capacity: f64,
    /// At half capacity, before the rush: what normal latency is.
    pub warm: Duration,
    /// At twice capacity.
    pub rush: Duration,
    /// At half capacity again.
    pub after: Duration,
    /// How long a buyer keeps trying, from its first press of "buy".
    pub patience: Duration,
}

/// How long a buyer waits for an answer before it asks again.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One answer to one try.
#[derive(Clone, Copy, Debug)]
struct Try {
    /// Seconds since the scenario started, when the answer came.
    at: f64,
    status: u16,
    latency_ms: f64,
}

/// One buyer's whole story.
#[derive(Debug, Default)]
struct Buyer {
    first_sent: f64,
    tries: Vec<Try>,
    command_id: Option<String>,
    /// `succeeded`, `rejected` or `failed`, once learned.
    outcome: Option<String>,
    final_at: Option<f64>,
    /// A 4xx other than 429: the order was refused for good.
    refused: bool,
}

fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "rejected" | "failed")
}

/// A buyer presses "buy" and keeps at it, as a well-behaved client does.
async fn buy_until_known(
    client: &Client,
    path: &str,
    started: Instant,
    patience: Duration,
) -> Buyer {
    let key = uuid::Uuid::new_v4().to_string();
    let give_up = Instant::now() + patience;
    let now = || started.elapsed().as_secs_f64();
    let mut buyer = Buyer {
        first_sent: now(),
        ..Buyer::default()
    };
    let body = json!({ "quantity": 1 });
    let headers = [("idempotency-key", key.as_str())];
    let accepted = loop {
        let sent = Instant::now();
        let reply =
            tokio::time::timeout(ANSWER_WITHIN, client.try_post_with(path, &body, &headers))
                .await
                .ok()
                .flatten();
        let status = reply.as_ref().map_or(0, |r| r.status);
        buyer.tries.push(Try {
            at: now(),
            status,
            latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
        });
        let pause = match (status, &reply) {
            (200 | 202, Some(reply)) => break reply.str("command_id"),
            (429 | 503, Some(reply)) => retry_after(reply),
            (400..=499, _) => {
                buyer.refused = true;
                return buyer;
            }
            _ => 1.0,
        };
        if Instant::now() > give_up {
            return buyer;
        }
        tokio::time::sleep(Duration::from_secs_f64(pause * (1.0 + jitter() / 2.0))).await;
    };
    buyer.command_id = Some(accepted.clone());
    while Instant::now() < give_up {
        let mut pause = 1.0;
        if let Some(reply) = client.try_get(&format!("/v1/commands/{accepted}")).await {
            let status = reply.body["status"].as_str().unwrap_or_default();
            if is_final(status) {
                buyer.outcome = Some(status.to_owned());
                buyer.final_at = Some(now());
                break;
            }
            pause = retry_after(&reply);
        }
        tokio::time::sleep(Duration::from_secs_f64(pause * (1.0 + jitter() / 2.0))).await;
    }
    buyer
}

/// When the server asked to be asked again; a second if it did not say.
fn retry_after(reply: &Reply) -> f64 {
    reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0)
}

/// Runs `plan` against `system` for one event with seats for about half
/// the orders offered.
pub async fn overload(system: &mut System, setup: &str, plan: Plan) -> Figures {
    let normal = plan.capacity / 2.0;
    let rush = plan.capacity * 2.0;
    let phases = [(normal, plan.warm), (rush, plan.rush), (normal, plan.after)];
    let offered: f64 = phases.iter().map(|(rate, d)| rate * d.as_secs_f64()).sum();
    let seats = ((offered / 2.0) as u32).max(1);
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let path = format!("/v1/events/{event_id}/orders");
    let crowd = system.crowd("buyer", 2_000, &[Role::Attendee]);
    let calls_before = system.store_calls();

    let meter = Meter::start(system);
    let started = Instant::now();
    let mut buyers = FuturesUnordered::new();
    let mut stories = Vec::new();
    let mut n = 0_usize;
    let mut rush_calls = (calls_before, calls_before);
    for (index, (rate, length)) in phases.iter().enumerate() {
        if index == 2 {
            rush_calls.1 = system.store_calls();
        }
        if index == 1 {
            rush_calls.0 = system.store_calls();
        }
        let phase_started = Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
        while phase_started.elapsed() < *length {
            tokio::select! {
                _ = ticks.tick() => {
                    let client = &crowd[n % crowd.len()];
                    n += 1;
                    buyers.push(buy_until_known(client, &path, started, plan.patience));
                }
                Some(story) = buyers.next(), if !buyers.is_empty() => stories.push(story),
            }
        }
    }
    let rush_from = plan.warm.as_secs_f64();
    let rush_until = rush_from + plan.rush.as_secs_f64();
    while let Some(story) = buyers.next().await {
        stories.push(story);
    }
    let usage = meter.read();

    let accepted: Vec<&Buyer> = stories.iter().filter(|b| b.command_id.is_some()).collect();
    let count = |outcome: &str| {
        accepted
            .iter()
            .filter(|b| b.outcome.as_deref() == Some(outcome))
            .count()
    };
    let succeeded = count("succeeded");
    let completed = accepted.iter().filter(|b| b.outcome.is_some()).count();
    let sold = organizer.get(&format!("/v1/events/{event_id}")).await.body["sold"]
        .as_u64()
        .unwrap_or(0) as usize;

    let answers = || stories.iter().flat_map(|b| b.tries.iter());
    let in_rush = |t: &&Try| t.at >= rush_from && t.at < rush_until;
    let mut rush_accepted_ms: Vec<f64> = answers()
        .filter(in_rush)
        .filter(|t| matches!(t.status, 200 | 202))
        .map(|t| t.latency_ms)
        .collect();
    rush_accepted_ms.sort_by(f64::total_cmp);
    let rush_seconds = plan.rush.as_secs_f64();
    let shed_in_rush = answers()
        .filter(in_rush)
        .filter(|t| matches!(t.status, 429 | 503))
        .count();
    let completed_in_rush = accepted
        .iter()
        .filter(|b| {
            b.final_at
                .is_some_and(|at| at >= rush_from && at < rush_until)
        })
        .count();

    // Normal: the p99 from "buy" to final of buyers who came before the rush.
    let to_final = |b: &&Buyer| b.final_at.map(|f| (f - b.first_sent) * 1000.0);
    let mut warm: Vec<f64> = stories
        .iter()
        .filter(|b| b.first_sent < rush_from)
        .filter_map(|b| to_final(&b))
        .collect();
    warm.sort_by(f64::total_cmp);
    let normal_p99 = percentile(&warm, 99.0);
    let quick_enough = (normal_p99 * 2.0).max(normal_p99 + 250.0);
    // Recovered: the first second after the rush whose new buyers were all
    // let in at once and all learned their outcome quickly.
    let recovered_after = (0..plan.after.as_secs())
        .map(|s| rush_until + s as f64)
        .find(|from| {
            let mut arrivals = stories
                .iter()
                .filter(|b| b.first_sent >= *from && b.first_sent < from + 1.0)
                .peekable();
            arrivals.peek().is_some()
                && arrivals.all(|b| {
                    b.tries.len() == 1 && to_final(&b).is_some_and(|ms| ms <= quick_enough)
                })
        })
        .map(|from| from - rush_until);

    let unlearned = stories
        .iter()
        .filter(|b| !b.refused && b.outcome.is_none())
        .count();
    let mut answer_ms: Vec<f64> = accepted
        .iter()
        .filter_map(|b| b.tries.last().map(|t| t.latency_ms))
        .collect();
    answer_ms.sort_by(f64::total_cmp);
    let mut to_final_ms: Vec<f64> = accepted
        .iter()
        .filter_map(|b| {
            let answered = b.tries.last()?.at;
            b.final_at.map(|f| (f - answered).max(0.0) * 1000.0)
        })
        .collect();
    to_final_ms.sort_by(f64::total_cmp);
    let latest = |f: &dyn Fn(&Buyer) -> Option<f64>| {
        accepted.iter().filter_map(|b| f(b)).fold(0.0, f64::max)
    };

    let mut figures = Figures {
        scenario: "overload",
        setup: setup.to_owned(),
        offered: stories.len(),
        accepted: accepted.len(),
        completed,
        succeeded,
        rejected: count("rejected"),
        oversold: succeeded
            .saturating_sub(seats as usize)
            .max(sold.saturating_sub(seats as usize)),
        lost: accepted.len() - completed,
        accept_seconds: latest(&|b| b.tries.last().map(|t| t.at)),
        final_seconds: latest(&|b| b.final_at),
        answer_ms,
        to_final_ms,
        usage,
        extra: serde_json::Map::new(),
    };
    let per_second = |count: usize| count as f64 / rush_seconds.max(f64::MIN_POSITIVE);
    let store_calls = match (rush_calls.0, rush_calls.1) {
        (Some(before), Some(after)) if completed_in_rush > 0 => {
            json!((after - before) as f64 / completed_in_rush as f64)
        }
        _ => json!(null),
    };
    for (key, value) in [
        ("capacity", json!(plan.capacity)),
        ("rush_offered_per_second", json!(rush)),
        (
            "rush_arrivals_per_second",
            json!(per_second(
                stories
                    .iter()
                    .filter(|b| b.first_sent >= rush_from && b.first_sent < rush_until)
                    .count()
            )),
        ),
        ("rush_seconds", json!(rush_seconds)),
        (
            "rush_accepted_per_second",
            json!(per_second(rush_accepted_ms.len())),
        ),
        ("rush_shed_per_second", json!(per_second(shed_in_rush))),
        (
            "rush_completed_per_second",
            json!(per_second(completed_in_rush)),
        ),
        (
            "rush_accepted_p99_ms",
            json!(percentile(&rush_accepted_ms, 99.0)),
        ),
        ("normal_final_p99_ms", json!(normal_p99)),
        ("recovered_after_seconds", json!(recovered_after)),
        ("store_calls_per_completed_order_in_rush", store_calls),
        ("tries", json!(answers().count())),
        (
            "shed",
            json!(answers().filter(|t| matches!(t.status, 429 | 503)).count()),
        ),
        (
            "unanswered",
            json!(answers().filter(|t| t.status == 0).count()),
        ),
        (
            "server_errors",
            json!(
                answers()
                    .filter(|t| t.status >= 500 && t.status != 503)
                    .count()
            ),
        ),
        (
            "refused",
            json!(stories.iter().filter(|b| b.refused).count()),
        ),
        ("unlearned", json!(unlearned)),
        ("seats", json!(seats)),
        ("event_sold", json!(sold)),
    ] {
        figures.extra.insert(key.into(), value);
    }
    figures
}
