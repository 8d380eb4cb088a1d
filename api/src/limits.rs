//! What one client may ask of a replica: writes per second per user and
//! per address, and the rate limiter that counts them. Every limit is
//! configured once, in [`Limits`]; `0` turns a rate limit off.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use eventsys_messages::UserId;

use crate::{
    AppState,
    admission::AdmissionRule,
    auth::Caller,
    hub::HubLimits,
    input::{BODY_LIMIT, read_body, too_large},
    problem::Problem,
};

/// Every limit a replica enforces, with defaults set for people, not
/// benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Sustained writes per second per user; 0 = no limit.
    pub writes_per_user: u32,
    /// Sustained writes per second per client address; 0 = no limit.
    pub writes_per_addr: u32,
    /// When the replica stops taking on commands.
    pub admission: AdmissionRule,
    /// Open live connections and what they follow.
    pub hub: HubLimits,
    /// Messages per second a live connection may send.
    pub ws_messages_per_second: u32,
    /// The largest message (and frame) a live connection may send.
    pub ws_message_bytes: usize,
    /// Open TCP connections; the next waits in the listen backlog.
    pub connections: usize,
    /// How long a client has to send a request's headers, and how long a
    /// kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Whether webhook endpoints may resolve to loopback or private
    /// addresses (tests, a compose file on one host).
    pub private_webhooks: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            writes_per_user: 5,
            writes_per_addr: 50,
            admission: AdmissionRule::default(),
            hub: HubLimits::default(),
            ws_messages_per_second: 20,
            ws_message_bytes: crate::ws::MAX_CLIENT_MESSAGE_BYTES,
            connections: 20_000,
            header_timeout: Duration::from_secs(10),
            private_webhooks: false,
        }
    }
}

/// Header lines a request may carry; more get 431.
pub const MAX_HEADERS: usize = 100;

/// Refuses, before routing, requests with too many headers (431) and
/// bodies declared larger than the limit (413). The body is read and
/// dropped first, up to a bound, so that a client still sending it reads
/// the answer instead of a reset connection.
pub async fn bound_requests(request: Request, next: Next) -> Response {
    if request.headers().len() > MAX_HEADERS {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_many_headers",
            format!("a request may carry at most {MAX_HEADERS} header lines"),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        let problem = match read_body(request.into_body()).await {
            Err(problem) => problem,
            Ok(_) => too_large(),
        };
        let mut response = problem.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

/// Seconds of the sustained rate a client may spend at once.
const BURST_SECONDS: u32 = 4;

/// A keyed rate limiter (the generic cell rate algorithm): each key may
/// do `rate` things per second, and up to [`BURST_SECONDS`] worth at once.
pub struct RateLimiter<K> {
    interval: Option<Duration>,
    burst: Duration,
    state: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    /// When each key's allowance is next fully spent ("theoretical arrival time").
    due: HashMap<K, Instant>,
    /// Forget keys at rest once the map grows past this.
    sweep_at: usize,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn per_second(rate: u32) -> Self {
        let interval = (rate > 0).then(|| Duration::from_secs(1) / rate);
        Self {
            interval,
            burst: interval.unwrap_or_default() * (rate * BURST_SECONDS).max(1),
            state: Mutex::new(Buckets {
                due: HashMap::new(),
                sweep_at: 1024,
            }),
        }
    }

    /// Counts one more for `key`; `Err(wait)` if it is over its rate and
    /// may try again after `wait`.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.due.len() >= state.sweep_at {
            state.due.retain(|_, due| *due > now);
            state.sweep_at = (state.due.len() * 2).max(1024);
        }
        let due = state.due.entry(key).or_insert(now);
        let next = (*due).max(now) + interval;
        let ahead = next - now;
        if ahead > self.burst {
            return Err(ahead - self.burst);
        }
        *due = next;
        Ok(())
    }
}

/// Writes (anything but GET, HEAD and OPTIONS) count against the caller's
/// address and, when it carries a valid token, its user. Over either, the
/// answer is 429 with `Retry-After`, before anything else is looked at.
pub async fn limit_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let addr = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(addr) = addr
        && let Err(wait) = state.rates.per_addr.check(addr)
    {
        return too_many(wait, "this address").into_response();
    }
    // Identified, its token verified, by `auth::identify` outside this.
    let user = request.extensions().get::<Caller>().map(|c| c.user.clone());
    if let Some(user) = user
        && let Err(wait) = state.rates.per_user.check(user)
    {
        return too_many(wait, "this user").into_response();
    }
    next.run(request).await
}

fn too_many(wait: Duration, whom: &str) -> Problem {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
    Problem {
        retry_after: Some(seconds),
        ..Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{whom} is sending writes too fast; retry in {seconds} s"),
        )
    }
}

/// The write limiters of one replica.
pub struct WriteRates {
    pub per_user: RateLimiter<UserId>,
    pub per_addr: RateLimiter<IpAddr>,
}

impl WriteRates {
    pub fn new(limits: &Limits) -> Self {
        Self {
            per_user: RateLimiter::per_second(limits.writes_per_user),
            per_addr: RateLimiter::per_second(limits.writes_per_addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate_and_no_more() {
        let limiter = RateLimiter::per_second(5);
        let start = Instant::now();
        let burst = (0..100)
            .take_while(|_| limiter.check_at("ann", start).is_ok())
            .count();
        assert_eq!(burst, 20, "four seconds' worth at once");
        let wait = limiter.check_at("ann", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
        assert!(limiter.check_at("bob", start).is_ok(), "keys are apart");
        // A second later, five more and not a sixth.
        let later = start + Duration::from_secs(1);
        let more = (0..100)
            .take_while(|_| limiter.check_at("ann", later).is_ok())
            .count();
        assert_eq!(more, 5);
    }

    #[test]
    fn a_rate_of_zero_limits_nothing() {
        let limiter = RateLimiter::per_second(0);
        assert!((0..10_000).all(|_| limiter.check("ann").is_ok()));
    }

    #[test]
    fn keys_at_rest_are_forgotten() {
        let limiter = RateLimiter::per_second(1000);
        let start = Instant::now();
        for n in 0..5000 {
            limiter.check_at(n, start).unwrap();
        }
        let later = start + Duration::from_secs(10);
        for n in 5000..9000 {
            limiter.check_at(n, later).unwrap();
        }
        let kept = limiter.state.lock().unwrap().due.len();
        assert_eq!(kept, 4000, "only the keys still counting are kept");
    }

    proptest::proptest! {
        #[test]
        fn no_key_gets_more_than_its_burst_and_its_rate(
            rate in 1_u32..50,
            gaps in proptest::collection::vec(0_u64..400, 1..300),
        ) {
            let limiter = RateLimiter::per_second(rate);
            let start = Instant::now();
            let mut at = start;
            let mut passed = 0_u64;
            for gap in gaps {
                at += Duration::from_millis(gap);
                if limiter.check_at("ann", at).is_ok() {
                    passed += 1;
                }
            }
            let elapsed = (at - start).as_secs_f64();
            let most = f64::from(rate * BURST_SECONDS) + elapsed * f64::from(rate) + 1.0;
            proptest::prop_assert!(passed as f64 <= most, "{passed} passed, at most {most}");
        }
    }
}
