//! The load generator's scenarios, driving a running system over real HTTP
//! and WebSocket connections as buyers, browsers and door staff would:
//!
//! - [`flash_sale`]: U buyers press "buy" at once for C seats, each waiting
//!   for its final status on its own WebSocket;
//! - [`closed_loop`]: C clients, each sending its next order when the last
//!   is final (`Prefer: wait`), N orders against fewer seats than N;
//! - [`steady`]: a fixed arrival rate of mixed traffic (browse, buy, read a
//!   status, cancel) for T seconds, open loop;
//! - [`fanout`]: K WebSocket clients following one event while it sells.
//!
//! Each returns [`Figures`]: counts that must be exact (oversold and lost
//! are 0 on a correct system: the smoke tests assert that), latencies,
//! and what the system's processes spent. The benchmarks print them; see
//! BENCHMARKS.md for the method.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use eventsys_api::auth::Role;
use futures::{
    StreamExt,
    future::join_all,
    stream::{self, FuturesUnordered},
};
use serde_json::{Value, json};

use crate::{Client, Live, System, client::event_body};

/// How long an accepted order may take to become final before it counts
/// as lost.
const FINAL_WITHIN: Duration = Duration::from_secs(300);

/// WebSockets opened at once while a scenario sets up.
const CONNECTING_AT_ONCE: usize = 128;

/// What one process of the system spent during a scenario.
#[derive(Clone, Debug)]
pub struct Usage {
    pub process: String,
    pub cpu_seconds: f64,
    /// The most memory it held at any time, in MiB (`VmHWM`).
    pub peak_rss_mib: f64,
}

/// The CPU clock of the system's processes, started before the load.
pub struct Meter {
    processes: Vec<(String, u32, f64)>,
}

impl Meter {
    pub fn start(system: &mut System) -> Self {
        let processes = system
            .names()
            .into_iter()
            .map(|name| {
                let pid = system.pid(&name);
                (name, pid, cpu_seconds(pid))
            })
            .collect();
        Self { processes }
    }

    pub fn read(&self) -> Vec<Usage> {
        self.processes
            .iter()
            .map(|(name, pid, before)| Usage {
                process: name.clone(),
                cpu_seconds: cpu_seconds(*pid) - before,
                peak_rss_mib: peak_rss_mib(*pid),
            })
            .collect()
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')';
    // USER_HZ is 100 on Linux.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The value at percentile `p` of `sorted`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One order as its buyer lived it.
#[derive(Clone, Debug, Default)]
struct Order {
    /// From the press of "buy" to the answer.
    answer_ms: f64,
    /// From the press of "buy" to the final status, if it came.
    final_ms: Option<f64>,
    /// The HTTP status of the answer; 0 for none.
    http: u16,
    /// `succeeded`, `rejected` or `failed`; empty while not final.
    status: String,
    command_id: Option<String>,
    /// Which client of the crowd sent it: only they may read it.
    buyer: usize,
    /// When the final status was known, since the scenario started.
    final_at: Option<f64>,
    /// When the answer came, since the scenario started.
    answered_at: f64,
}

impl Order {
    fn accepted(&self) -> bool {
        matches!(self.http, 200 | 202)
    }
}

/// What a scenario measured.
#[derive(Clone, Debug)]
pub struct Figures {
    pub scenario: &'static str,
    pub setup: String,
    /// Orders sent.
    pub offered: usize,
    /// Orders answered 202 (or 200 with a final status).
    pub accepted: usize,
    /// Accepted orders that reached a final status.
    pub completed: usize,
    pub succeeded: usize,
    /// Turned down (sold out, mostly).
    pub rejected: usize,
    /// Seats sold beyond the capacity, by the orders and by the event's own
    /// count: 0.
    pub oversold: usize,
    /// Accepted orders that never became final: 0.
    pub lost: usize,
    /// From the first order sent to the last 202.
    pub accept_seconds: f64,
    /// From the first order sent to the last final status.
    pub final_seconds: f64,
    /// Sorted: press of "buy" to the answer.
    pub answer_ms: Vec<f64>,
    /// Sorted: answer to final status (0 when the answer was final).
    pub to_final_ms: Vec<f64>,
    pub usage: Vec<Usage>,
    /// Figures only this scenario has.
    pub extra: serde_json::Map<String, Value>,
}

impl Figures {
    fn from_orders(scenario: &'static str, setup: &str, seats: u32, orders: &[Order]) -> Self {
        let accepted: Vec<&Order> = orders.iter().filter(|o| o.accepted()).collect();
        let count = |status: &str| accepted.iter().filter(|o| o.status == status).count();
        let completed = accepted.iter().filter(|o| !o.status.is_empty()).count();
        let succeeded = count("succeeded");
        let mut answer_ms: Vec<f64> = accepted.iter().map(|o| o.answer_ms).collect();
        answer_ms.sort_by(f64::total_cmp);
        let mut to_final_ms: Vec<f64> = accepted
            .iter()
            .filter_map(|o| o.final_ms.map(|f| (f - o.answer_ms).max(0.0)))
            .collect();
        to_final_ms.sort_by(f64::total_cmp);
        let latest = |at: &dyn Fn(&Order) -> Option<f64>| {
            accepted.iter().filter_map(|o| at(o)).fold(0.0, f64::max)
        };
        Self {
            scenario,
            setup: setup.to_owned(),
            offered: orders.len(),
            accepted: accepted.len(),
            completed,
            succeeded,
            rejected: count("rejected"),
            oversold: succeeded.saturating_sub(seats as usize),
            lost: accepted.len() - completed,
            accept_seconds: latest(&|o| Some(o.answered_at)),
            final_seconds: latest(&|o| o.final_at),
            answer_ms,
            to_final_ms,
            usage: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// Reads what the event says it sold (which must equal the orders that
    /// succeeded) and counts anything beyond its seats as oversold too.
    async fn count_the_event(&mut self, organizer: &Client, event_id: &str, seats: u32) {
        let reply = organizer.get(&format!("/v1/events/{event_id}")).await;
        let sold = reply.body["sold"].as_u64().unwrap_or(0);
        let beyond = usize::try_from(sold.saturating_sub(u64::from(seats))).unwrap_or(usize::MAX);
        self.oversold = self.oversold.max(beyond);
        self.extra.insert("seats".into(), json!(seats));
        self.extra.insert("event_sold".into(), json!(sold));
    }

    pub fn accepted_per_second(&self) -> f64 {
        per_second(self.accepted, self.accept_seconds)
    }

    pub fn completed_per_second(&self) -> f64 {
        per_second(self.completed, self.final_seconds)
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.usage.iter().map(|u| u.cpu_seconds).sum()
    }

    /// CPU milliseconds the system spent per completed order.
    pub fn cpu_ms_per_order(&self) -> f64 {
        if self.completed == 0 {
            return 0.0;
        }
        self.cpu_seconds() * 1000.0 / self.completed as f64
    }

    /// The one JSON line a run prints per scenario and setup.
    pub fn json(&self) -> Value {
        let p = |v: &[f64]| {
            json!({ "p50": percentile(v, 50.0), "p95": percentile(v, 95.0),
                    "p99": percentile(v, 99.0) })
        };
        let mut line = json!({
            "scenario": self.scenario,
            "setup": self.setup,
            "offered": self.offered,
            "accepted": self.accepted,
            "completed": self.completed,
            "succeeded": self.succeeded,
            "rejected": self.rejected,
            "oversold": self.oversold,
            "lost": self.lost,
            "accepted_per_second": self.accepted_per_second(),
            "completed_per_second": self.completed_per_second(),
            "answer_ms": p(&self.answer_ms),
            "answer_to_final_ms": p(&self.to_final_ms),
            "cpu_seconds": self.cpu_seconds(),
            "cpu_ms_per_completed_order": self.cpu_ms_per_order(),
            "processes": self.usage.iter().map(|u| json!({
                "process": u.process, "cpu_seconds": u.cpu_seconds,
                "peak_rss_mib": u.peak_rss_mib })).collect::<Vec<_>>(),
        });
        for (key, value) in &self.extra {
            line[key] = value.clone();
        }
        line
    }
}

fn per_second(count: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Prints `runs` as a table, then one JSON line each.
pub fn print(runs: &[Figures]) {
    println!(
        "{:<12} {:<34} {:>7} {:>9} {:>10} {:>9} {:>9} {:>10} {:>10} {:>8} {:>9} {:>5} {:>5}",
        "scenario",
        "setup",
        "orders",
        "202/s",
        "final/s",
        "202 p50",
        "202 p99",
        "final p50",
        "final p99",
        "CPU s",
        "CPU ms/o",
        "over",
        "lost"
    );
    for r in runs {
        println!(
            "{:<12} {:<34} {:>7} {:>9.0} {:>10.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>8.2} {:>9.2} {:>5} {:>5}",
            r.scenario,
            r.setup,
            r.offered,
            r.accepted_per_second(),
            r.completed_per_second(),
            percentile(&r.answer_ms, 50.0),
            percentile(&r.answer_ms, 99.0),
            percentile(&r.to_final_ms, 50.0),
            percentile(&r.to_final_ms, 99.0),
            r.cpu_seconds(),
            r.cpu_ms_per_order(),
            r.oversold,
            r.lost
        );
    }
    for r in runs {
        println!("{}", r.json());
    }
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "rejected" | "failed")
}

/// Opens one WebSocket per client, a bounded number at a time.
async fn connect_all(clients: &[Client]) -> Vec<Live> {
    stream::iter(clients)
        .map(Client::live)
        .buffered(CONNECTING_AT_ONCE)
        .collect()
        .await
}

/// Asks the API, as each buyer, for the final status of orders whose push
/// never came (a buyer who missed it would ask too); returns how many were
/// final.
async fn ask_the_rest(crowd: &[Client], orders: &mut [Order], started: Instant) -> usize {
    let mut found = 0;
    for order in orders
        .iter_mut()
        .filter(|o| o.accepted() && o.status.is_empty())
    {
        let (Some(id), Some(client)) = (&order.command_id, crowd.get(order.buyer)) else {
            continue;
        };
        let reply = client.get(&format!("/v1/commands/{id}")).await;
        let status = reply.body["status"].as_str().unwrap_or_default();
        if is_final(status) {
            order.status = status.to_owned();
            order.final_at = Some(started.elapsed().as_secs_f64());
            found += 1;
        }
    }
    found
}

/// `buyers` buyers, one ticket each, all at once, for `seats` seats; each
/// waits for its final status on its own WebSocket.
pub async fn flash_sale(system: &mut System, setup: &str, buyers: usize, seats: u32) -> Figures {
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let crowd = system.crowd("buyer", buyers, &[Role::Attendee]);
    let feeds = connect_all(&crowd).await;
    let path = format!("/v1/events/{event_id}/orders");

    let meter = Meter::start(system);
    let started = Instant::now();
    let mut orders = join_all(
        crowd
            .iter()
            .zip(feeds)
            .enumerate()
            .map(|(i, (buyer, mut feed))| {
                let path = &path;
                async move {
                    let sent = Instant::now();
                    let reply = buyer.try_post(path, &json!({ "quantity": 1 })).await;
                    let mut order = Order {
                        buyer: i,
                        answer_ms: ms(sent.elapsed()),
                        answered_at: started.elapsed().as_secs_f64(),
                        http: reply.as_ref().map_or(0, |r| r.status),
                        ..Order::default()
                    };
                    let Some(id) = reply
                        .filter(|r| r.status == 202)
                        .map(|r| r.str("command_id"))
                    else {
                        return order;
                    };
                    let frame = feed
                        .wait_for(FINAL_WITHIN, |f| {
                            f["type"] == "command.updated"
                                && f["command_id"] == id.as_str()
                                && is_final(f["status"].as_str().unwrap_or_default())
                        })
                        .await;
                    if let Some(frame) = frame {
                        order.final_ms = Some(ms(sent.elapsed()));
                        order.final_at = Some(started.elapsed().as_secs_f64());
                        order.status = frame["status"].as_str().unwrap_or_default().to_owned();
                    }
                    order.command_id = Some(id);
                    order
                }
            }),
    )
    .await;
    let usage = meter.read();
    let missed_pushes = ask_the_rest(&crowd, &mut orders, started).await;
    let mut figures = Figures::from_orders("flash-sale", setup, seats, &orders);
    figures.count_the_event(&organizer, &event_id, seats).await;
    figures.usage = usage;
    figures.extra.insert("buyers".into(), json!(buyers));
    figures.extra.insert(
        "final_status_by_request_not_push".into(),
        json!(missed_pushes),
    );
    figures
}

/// `clients` clients, each ordering one ticket when its last order is
/// final, `orders` in all, for 3/4 as many seats.
pub async fn closed_loop(
    system: &mut System,
    setup: &str,
    clients: usize,
    orders: usize,
) -> Figures {
    let seats = u32::try_from(orders * 3 / 4).unwrap_or(u32::MAX);
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let path = format!("/v1/events/{event_id}/orders");
    let crowd = system.crowd("buyer", clients, &[Role::Attendee]);
    let per_client = orders / clients.max(1);

    let meter = Meter::start(system);
    let started = Instant::now();
    let all = join_all(crowd.iter().map(|client| {
        let path = &path;
        async move {
            let mut mine = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                mine.push(order_and_wait(client, path, started).await);
            }
            mine
        }
    }))
    .await;
    let usage = meter.read();
    let orders: Vec<Order> = all.into_iter().flatten().collect();
    let mut figures = Figures::from_orders("closed-loop", setup, seats, &orders);
    figures.count_the_event(&organizer, &event_id, seats).await;
    figures.usage = usage;
    figures.extra.insert("clients".into(), json!(clients));
    figures
}

/// One order with `Prefer: wait`, polled to its end if the wait ran out.
async fn order_and_wait(client: &Client, path: &str, started: Instant) -> Order {
    let sent = Instant::now();
    let reply = client
        .try_post_with(path, &json!({ "quantity": 1 }), &[("prefer", "wait=30")])
        .await;
    let mut order = Order {
        answer_ms: ms(sent.elapsed()),
        answered_at: started.elapsed().as_secs_f64(),
        http: reply.as_ref().map_or(0, |r| r.status),
        ..Order::default()
    };
    let Some(reply) = reply.filter(|r| matches!(r.status, 200 | 202)) else {
        return order;
    };
    let id = reply.str("command_id");
    let status = if reply.status == 200 {
        reply.body["status"].as_str().unwrap_or_default().to_owned()
    } else {
        client.wait_terminal(&id, FINAL_WITHIN).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    if is_final(&status) {
        order.final_ms = Some(ms(sent.elapsed()));
        order.final_at = Some(started.elapsed().as_secs_f64());
        order.status = status;
    }
    order.command_id = Some(id);
    order
}

/// Mixed traffic at `rate` requests per second for `duration`, open loop:
/// of every ten requests, six browse the event, two buy a ticket, one reads
/// an order's status and one cancels an earlier order. Every buy that was
/// accepted must become final.
pub async fn steady(system: &mut System, setup: &str, rate: u32, duration: Duration) -> Figures {
    let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
    // Room for every buy: what is measured is the latency at this rate,
    // not a sell-out.
    let seats = u32::try_from(total).unwrap_or(u32::MAX).max(10);
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let crowd = Arc::new(system.crowd("visitor", 200, &[Role::Attendee]));
    // (buyer, command id, order id) of accepted buys, for reads and cancels.
    let bought: Arc<Mutex<Vec<(usize, String, String)>>> = Arc::default();

    let meter = Meter::start(system);
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut pending = FuturesUnordered::new();
    let mut done: Vec<(&'static str, Order)> = Vec::with_capacity(total);
    let mut sent = 0;
    while sent < total || !pending.is_empty() {
        tokio::select! {
            _ = ticks.tick(), if sent < total => {
                let (crowd, bought, event_id, i) = (crowd.clone(), bought.clone(), event_id.clone(), sent);
                pending.push(async move { visit(&crowd, &bought, &event_id, i, started).await });
                sent += 1;
            }
            Some(visit) = pending.next(), if !pending.is_empty() => done.push(visit),
        }
    }
    let offered_seconds = started.elapsed().as_secs_f64();
    // Every accepted buy must end; its end is not part of the rate.
    let mut buys: Vec<Order> = done
        .iter()
        .filter(|(kind, _)| *kind == "buy")
        .map(|(_, o)| o.clone())
        .collect();
    let deadline = Instant::now() + FINAL_WITHIN;
    loop {
        ask_the_rest(&crowd, &mut buys, started).await;
        let open = buys.iter().any(|o| o.accepted() && o.status.is_empty());
        if !open || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let usage = meter.read();
    let mut figures = Figures::from_orders("steady", setup, seats, &buys);
    figures.usage = usage;
    let errors = done
        .iter()
        .filter(|(_, o)| o.http >= 500 || o.http == 0)
        .count();
    figures.extra.insert("rate".into(), json!(rate));
    figures
        .extra
        .insert("seconds".into(), json!(duration.as_secs_f64()));
    figures.extra.insert(
        "achieved_rate".into(),
        json!(done.len() as f64 / offered_seconds),
    );
    figures.extra.insert("server_errors".into(), json!(errors));
    for kind in ["browse", "status", "cancel"] {
        let mut latencies: Vec<f64> = done
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, o)| o.answer_ms)
            .collect();
        latencies.sort_by(f64::total_cmp);
        figures.extra.insert(
            format!("{kind}_ms"),
            json!({ "count": latencies.len(), "p50": percentile(&latencies, 50.0),
                    "p99": percentile(&latencies, 99.0) }),
        );
    }
    figures
}

/// The `i`th request of [`steady`].
async fn visit(
    crowd: &[Client],
    bought: &Mutex<Vec<(usize, String, String)>>,
    event_id: &str,
    i: usize,
    started: Instant,
) -> (&'static str, Order) {
    let who = i % crowd.len();
    let client = &crowd[who];
    let earlier = || {
        let mut bought = bought.lock().unwrap_or_else(|p| p.into_inner());
        bought.pop()
    };
    let sent = Instant::now();
    let (kind, reply) = match i % 10 {
        6 | 7 => {
            let path = format!("/v1/events/{event_id}/orders");
            (
                "buy",
                client.try_post(&path, &json!({ "quantity": 1 })).await,
            )
        }
        8 => match earlier() {
            Some((buyer, command, order)) => {
                let reply = crowd[buyer]
                    .try_get(&format!("/v1/commands/{command}"))
                    .await;
                // Still there to be cancelled later.
                bought
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(0, (buyer, command, order));
                ("status", reply)
            }
            None => (
                "status",
                client.try_get(&format!("/v1/events/{event_id}")).await,
            ),
        },
        9 => match earlier() {
            Some((buyer, _, order)) => {
                let path = format!("/v1/orders/{order}/cancel");
                ("cancel", crowd[buyer].try_post(&path, &json!({})).await)
            }
            None => (
                "cancel",
                client.try_get(&format!("/v1/events/{event_id}")).await,
            ),
        },
        _ => (
            "browse",
            client.try_get(&format!("/v1/events/{event_id}")).await,
        ),
    };
    let mut order = Order {
        buyer: who,
        answer_ms: ms(sent.elapsed()),
        answered_at: started.elapsed().as_secs_f64(),
        http: reply.as_ref().map_or(0, |r| r.status),
        ..Order::default()
    };
    if let Some(reply) = reply.filter(|r| kind == "buy" && r.status == 202) {
        let command = reply.str("command_id");
        if let Some(id) = reply.body["order_id"].as_str() {
            bought.lock().unwrap_or_else(|p| p.into_inner()).push((
                who,
                command.clone(),
                id.to_owned(),
            ));
        }
        order.command_id = Some(command);
    }
    (kind, order)
}

/// `followers` WebSocket clients follow one event while `orders` orders
/// sell it, one after another; measures how long after an order was final
/// each follower heard the event's new count (`event.updated`, or a later
/// one).
pub async fn fanout(system: &mut System, setup: &str, followers: usize, orders: usize) -> Figures {
    let seats = u32::try_from(orders).unwrap_or(u32::MAX);
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let crowd = system.crowd("follower", followers, &[Role::Attendee]);
    let mut feeds = connect_all(&crowd).await;
    let subscribed = join_all(feeds.iter_mut().map(|feed| {
        let event_id = &event_id;
        async move {
            feed.send(json!({ "type": "subscribe", "event_id": event_id }))
                .await;
            feed.wait_for(Duration::from_secs(60), |f| f["type"] == "subscribed")
                .await
                .is_some()
        }
    }))
    .await;
    let following = subscribed.iter().filter(|s| **s).count();

    // Each follower notes when it heard each remaining count first.
    let started = Instant::now();
    let listening: Vec<_> = feeds
        .into_iter()
        .map(|mut feed| {
            tokio::spawn(async move {
                let mut heard: Vec<(u64, f64)> = Vec::new();
                while let Some(frame) = feed.next(Duration::from_secs(30)).await {
                    if frame["type"] == "event.updated"
                        && let Some(remaining) = frame["remaining"].as_u64()
                        && heard.last().is_none_or(|(r, _)| remaining < *r)
                    {
                        heard.push((remaining, started.elapsed().as_secs_f64() * 1000.0));
                        if remaining == 0 {
                            break;
                        }
                    }
                }
                heard
            })
        })
        .collect();

    let meter = Meter::start(system);
    let seller = system.client("seller", &[Role::Attendee]);
    let path = format!("/v1/events/{event_id}/orders");
    // remaining count after each order -> when that order was final.
    let mut finals = Vec::with_capacity(orders);
    let mut sale = Vec::with_capacity(orders);
    for i in 0..orders {
        let order = order_and_wait(&seller, &path, started).await;
        if let Some(at) = order.final_at {
            finals.push((u64::from(seats) - (i as u64 + 1), at * 1000.0));
        }
        sale.push(order);
    }
    let mut delays = Vec::new();
    let mut missed = 0;
    for listener in listening {
        let heard = listener.await.unwrap_or_default();
        // Counts only fall during the sale, and a newer count may stand in
        // for older ones: the follower knew of a sale once it heard its
        // count or a lower one.
        for (remaining, final_at) in &finals {
            match heard.iter().find(|(r, _)| r <= remaining) {
                Some((_, at)) => delays.push((at - final_at).max(0.0)),
                None => missed += 1,
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    let usage = meter.read();
    let mut figures = Figures::from_orders("fanout", setup, seats, &sale);
    figures.usage = usage;
    figures.extra.insert("followers".into(), json!(following));
    figures.extra.insert(
        "event_updated_ms".into(),
        json!({ "count": delays.len(), "p50": percentile(&delays, 50.0),
                "p95": percentile(&delays, 95.0), "p99": percentile(&delays, 99.0),
                "max": delays.last().copied().unwrap_or(0.0) }),
    );
    figures
        .extra
        .insert("updates_not_heard".into(), json!(missed));
    figures
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// The raw rate of single conditional writes (`PutItem` on condition the
/// item is new) that `writers` concurrent writers get from `system`'s
/// DynamoDB-compatible server in `period`, with the adapter's client
/// settings: the ceiling every distributed figure is read against.
pub async fn store_ceiling(system: &System, writers: usize, period: Duration) -> f64 {
    use aws_sdk_dynamodb::types::AttributeValue;
    let config = system.store_config();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(config.endpoint.clone().unwrap_or_default())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&shared);
    let table = format!("{}commands", config.table_prefix);
    let started = Instant::now();
    let counts = join_all((0..writers).map(|w| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let mut written = 0_u32;
            let mut n = 0_u64;
            while started.elapsed() < period {
                n += 1;
                let put = client
                    .put_item()
                    .table_name(&table)
                    .item("command_id", AttributeValue::S(format!("ceiling-{w}-{n}")))
                    .item("status", AttributeValue::S("accepted".into()))
                    .condition_expression("attribute_not_exists(command_id)")
                    .send()
                    .await;
                written += u32::from(put.is_ok());
            }
            written
        }
    }))
    .await;
    f64::from(counts.iter().sum::<u32>()) / started.elapsed().as_secs_f64()
}
