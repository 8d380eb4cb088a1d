//! A flash sale: many buyers, each watching their own WebSocket, press "buy"
//! at the same moment. Shared by the tests (which check the outcome) and
//! the benchmark (which times it).

use std::time::{Duration, Instant};

use eventsys_api::auth::Role;
use futures::future::join_all;
use serde_json::Value;

use crate::{Client, System, client::event_body};

pub struct Rush {
    pub event_id: String,
    pub organizer: Client,
    pub buyers: Vec<Client>,
    /// Each buyer's final `command.updated` frame, in buyer order.
    pub outcomes: Vec<Value>,
    /// From the first request to the last 202.
    pub all_accepted: Duration,
    /// From the first request to the last final status.
    pub all_final: Duration,
}

impl Rush {
    pub fn count(&self, status: &str, code: Option<&str>) -> usize {
        self.outcomes
            .iter()
            .filter(|f| f["status"] == status && code.is_none_or(|c| f["error"]["code"] == c))
            .count()
    }
}

/// `buyers` buyers, one ticket each, for an event of `seats` seats.
pub async fn rush(system: &System, buyers: usize, seats: u32) -> Rush {
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let buyers: Vec<Client> = (0..buyers)
        .map(|i| system.client(&format!("buyer-{i}"), &[Role::Attendee]))
        .collect();
    let mut feeds = join_all(buyers.iter().map(|b| b.live())).await;

    let started = Instant::now();
    let accepted = join_all(buyers.iter().map(|b| b.order(&event_id, 1))).await;
    let all_accepted = started.elapsed();
    let outcomes = join_all(feeds.iter_mut().zip(&accepted).map(|(feed, reply)| {
        let command_id = reply.str("command_id");
        async move {
            feed.wait_for(Duration::from_secs(120), |f| {
                f["type"] == "command.updated"
                    && f["command_id"] == command_id.as_str()
                    && matches!(
                        f["status"].as_str(),
                        Some("succeeded" | "rejected" | "failed")
                    )
            })
            .await
            .expect("every accepted order reaches a final status")
        }
    }))
    .await;
    let all_final = started.elapsed();
    Rush {
        event_id,
        organizer,
        buyers,
        outcomes,
        all_accepted,
        all_final,
    }
}
