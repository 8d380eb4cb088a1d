//! A steady stream of orders while something goes wrong, and the check of
//! every promise afterwards: each accepted order reaches a final status,
//! nothing is done twice, nothing is oversold, nothing is left half-way.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::json;

use crate::{Client, System};

/// One press of "buy".
#[derive(Debug)]
pub enum Attempt {
    /// 202 with this command id.
    Accepted(String),
    /// A problem document (503 while a dependency is down, say).
    Refused(u16),
    /// No answer at all (the API was down or died).
    Unanswered,
}

/// Orders one ticket at a time, `rate` per second for `duration`, spread
/// over `buyers`, whatever happens to the system meanwhile.
pub async fn orders(
    buyers: Arc<Vec<Client>>,
    event_id: String,
    rate: u32,
    duration: Duration,
) -> Vec<Attempt> {
    let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut pending = FuturesUnordered::new();
    let mut attempts = Vec::with_capacity(total);
    let mut sent = 0;
    while sent < total || !pending.is_empty() {
        tokio::select! {
            _ = ticks.tick(), if sent < total => {
                let (buyers, event_id, i) = (buyers.clone(), event_id.clone(), sent);
                pending.push(async move {
                    let buyer = &buyers[i % buyers.len()];
                    let path = format!("/v1/events/{event_id}/orders");
                    match buyer.try_post(&path, &json!({ "quantity": 1 })).await {
                        Some(reply) if reply.status == 202 => (i, Attempt::Accepted(reply.str("command_id"))),
                        Some(reply) => (i, Attempt::Refused(reply.status)),
                        None => (i, Attempt::Unanswered),
                    }
                });
                sent += 1;
            }
            Some(done) = pending.next(), if !pending.is_empty() => attempts.push(done),
        }
    }
    attempts.sort_by_key(|(i, _)| *i);
    attempts.into_iter().map(|(_, a)| a).collect()
}

/// What a fault did to the promises, with exact counts.
#[derive(Debug)]
pub struct Report {
    pub attempted: usize,
    pub accepted: usize,
    pub refused: usize,
    /// The status of each refusal.
    pub refusals: Vec<u16>,
    pub unanswered: usize,
    /// Accepted orders that reached `succeeded`, `rejected` or `failed`.
    pub terminal: usize,
    pub succeeded: usize,
    pub sold_out: usize,
    pub failed: usize,
    /// Tickets beyond one per confirmed order.
    pub duplicated: usize,
    /// Tickets beyond the capacity.
    pub oversold: usize,
    /// Commands left `accepted` or `processing` once everything settled.
    pub half_way: usize,
    /// From the end of the fault until every accepted order was final
    /// (including the tail of the load).
    pub settled_in: Duration,
}

impl Report {
    /// A row of the table in RELIABILITY.md.
    pub fn row(&self, fault: &str) -> String {
        format!(
            "| {fault} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {:.1} s |",
            self.attempted,
            self.accepted,
            self.refused,
            self.unanswered,
            self.terminal,
            self.succeeded,
            self.sold_out,
            self.failed,
            self.duplicated,
            self.oversold,
            self.half_way,
            self.settled_in.as_secs_f64()
        )
    }

    /// Every promise kept.
    pub fn assert_kept(&self) {
        assert_eq!(
            self.terminal, self.accepted,
            "accepted orders never finished: {self:?}"
        );
        assert_eq!(self.failed, 0, "orders failed: {self:?}");
        assert_eq!(self.duplicated, 0, "work done twice: {self:?}");
        assert_eq!(self.oversold, 0, "oversold: {self:?}");
        assert_eq!(self.half_way, 0, "commands left half-way: {self:?}");
        assert!(self.accepted > 0, "nothing was accepted at all: {self:?}");
    }
}

/// Waits for every accepted order to finish, then counts what the store holds.
pub async fn check(
    system: &mut System,
    buyer: &Client,
    event_id: &str,
    capacity: u32,
    attempts: &[Attempt],
    fault_over: Instant,
) -> Report {
    let accepted: Vec<&String> = attempts
        .iter()
        .filter_map(|a| match a {
            Attempt::Accepted(id) => Some(id),
            _ => None,
        })
        .collect();
    // Commands are read by an admin: any buyer's command is visible to it.
    let outcomes: Vec<serde_json::Value> = futures::stream::iter(&accepted)
        .map(|id| buyer.wait_terminal(id, Duration::from_secs(180)))
        .buffered(8)
        .collect()
        .await;
    let settled_in = fault_over.elapsed();
    let count = |status: &str| outcomes.iter().filter(|o| o["status"] == status).count();
    let sold_out = outcomes
        .iter()
        .filter(|o| o["error"]["code"] == "sold_out")
        .count();
    // The re-publisher may still be finishing commands nobody got an answer for.
    let oracle = system.oracle().await;
    let mut half_way = usize::MAX;
    for _ in 0..60 {
        half_way = oracle.count("commands", "status", "accepted").await
            + oracle.count("commands", "status", "processing").await;
        if half_way == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let tickets = oracle.count("tickets", "event_id", event_id).await;
    let confirmed = oracle.count("orders", "status", "confirmed").await;
    Report {
        attempted: attempts.len(),
        accepted: accepted.len(),
        refused: attempts
            .iter()
            .filter(|a| matches!(a, Attempt::Refused(_)))
            .count(),
        refusals: attempts
            .iter()
            .filter_map(|a| match a {
                Attempt::Refused(status) => Some(*status),
                _ => None,
            })
            .collect(),
        unanswered: attempts
            .iter()
            .filter(|a| matches!(a, Attempt::Unanswered))
            .count(),
        terminal: outcomes.len(),
        succeeded: count("succeeded"),
        sold_out,
        failed: count("failed"),
        duplicated: tickets.saturating_sub(confirmed),
        oversold: tickets.saturating_sub(capacity as usize),
        half_way,
        settled_in,
    }
}
