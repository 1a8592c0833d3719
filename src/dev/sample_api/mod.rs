//! A sample license API that serves the contract (`license-api.md`) with deterministic
//! data, for the tests, the demo and the benchmark; it can also misbehave on purpose
//! (faults, delays, hostile strings) so the client's error paths and the page's escaping
//! can be shown.
//!
//! The parts: [`data`] generates the history, [`answers`] renders the JSON, [`faults`]
//! breaks it on purpose, `server` routes calls and control commands (its command line is
//! `tokenusage sample-api` in `cli.rs`). I/O: [`SampleApi::start`] binds a TCP listener and
//! serves it on the development server's threads ([`crate::dev::http`]); [`run`] also
//! prints the URL on stdout and stops on SIGTERM/SIGINT ([`crate::transport::signals`]).
//! Data generation and rendering are pure and seeded: the same options, an
//! [`anchor`](SampleApiOptions::anchor) given, always give the same bytes; without one the
//! history ends when the API starts, so a demo shows recent activity.

pub mod answers;
pub mod data;
pub mod faults;
mod server;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::dev::http::{Handler, HttpRequest, HttpServer};
use crate::transport::signals;

pub use answers::{
    render_error, render_history, render_pricing, render_user_info, render_user_stats,
};
pub use data::{
    FIXED_ANCHOR, HOSTILE_PREFIX, HOSTILE_SUFFIX, SampleData, SampleTransaction, Totals, generate,
    parse_anchor,
};
pub use faults::{DEFAULT_REDIRECT_TARGET, Fault, GZIP_BOMB_BYTES, HANG_FOR, HUGE_BODY_BYTES};

use server::State;

/// The endpoints served, in the order the counters list them.
pub const ENDPOINTS: [&str; 4] = [
    "pricing/current",
    "user/info",
    "user/stats",
    "credits/history",
];
/// The counter for requests naming no known endpoint.
pub const OTHER_ENDPOINT: &str = "other";
/// `credits/history` entries returned when the request has no usable `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
/// Handler threads: enough for a client's parallel calls plus a few hung ones.
const WORKERS: usize = 16;

/// How the sample API answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleApiOptions {
    /// Transactions in the history (all of them count toward `user/stats`).
    pub transactions: usize,
    /// The `user/stats` balance.
    pub balance: f64,
    /// Added to every endpoint call.
    pub delay: Duration,
    /// Every text field carries [`HOSTILE_PREFIX`] and [`HOSTILE_SUFFIX`].
    pub hostile: bool,
    /// The initial fault.
    pub fault: Fault,
    /// Seed of the generated history.
    pub seed: u64,
    /// `created_at` of the newest transaction, in Unix seconds; `None`: the moment the API
    /// starts, rounded down to the second. [`FIXED_ANCHOR`] keeps a test's dates fixed.
    pub anchor: Option<i64>,
}

impl SampleApiOptions {
    /// The newest transaction's time: [`anchor`](Self::anchor), or now.
    pub fn anchor_or_now(&self) -> i64 {
        self.anchor
            .unwrap_or_else(|| chrono::Utc::now().timestamp())
    }
}

impl Default for SampleApiOptions {
    fn default() -> Self {
        SampleApiOptions {
            transactions: 10_000,
            balance: 12.3456,
            delay: Duration::ZERO,
            hostile: false,
            fault: Fault::None,
            seed: 5512,
            anchor: None,
        }
    }
}

/// A running sample API; stops when dropped.
pub struct SampleApi {
    state: Arc<State>,
    server: HttpServer,
}

impl SampleApi {
    /// Binds `addr` (`127.0.0.1:0` picks a free port) and serves on background threads.
    pub fn start(addr: &str, options: SampleApiOptions) -> io::Result<SampleApi> {
        Self::serve(TcpListener::bind(addr)?, options)
    }

    /// Serves on a listener the caller bound.
    pub fn serve(listener: TcpListener, options: SampleApiOptions) -> io::Result<SampleApi> {
        let shutdown = Arc::new(AtomicBool::new(false));
        let state = Arc::new(State::new(&options, Arc::clone(&shutdown)));
        // Render the usual history now, so the first timed call is not the slow one.
        state.history(DEFAULT_LIMIT);
        let handler: Handler = {
            let state = Arc::clone(&state);
            Arc::new(move |req: &HttpRequest| state.handle(req))
        };
        let server = HttpServer::start(listener, WORKERS, handler, shutdown)?;
        Ok(SampleApi { state, server })
    }

    /// The address served (a wildcard bind reports the loopback address).
    pub fn addr(&self) -> SocketAddr {
        let addr = self.server.addr();
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, addr.port())
    }

    /// The base URL to put in `api_url`: `http://127.0.0.1:PORT/projects/api.php`.
    pub fn url(&self) -> String {
        format!("http://{}/projects/api.php", self.addr())
    }

    /// Calls made to `endpoint` (one of [`ENDPOINTS`], or [`OTHER_ENDPOINT`]) so far.
    pub fn calls(&self, endpoint: &str) -> usize {
        self.state
            .counter(endpoint)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// The most endpoint calls that were inside their delay at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Zeroes every call counter and [`max_in_flight`](Self::max_in_flight), as
    /// `/__control/reset` does.
    pub fn reset_calls(&self) {
        self.state.reset_calls();
    }

    /// Changes how the following calls misbehave.
    pub fn set_fault(&self, fault: Fault) {
        self.state.faults.set(fault);
    }

    /// Changes where [`Fault::Redirect`] sends calls: a base URL, to which the request's
    /// query is added.
    pub fn set_redirect_target(&self, url: &str) {
        self.state.faults.set_redirect_target(url);
    }

    /// Changes the `user/stats` balance of the following calls.
    pub fn set_balance(&self, balance: f64) {
        self.state.set_balance(balance);
    }

    /// Leaves the newest `count` transactions out of the following history answers, as
    /// if they had not happened yet (0: all of them again).
    pub fn hide_newest(&self, count: usize) {
        self.state.hide_newest(count);
    }

    /// Stops serving: calls in progress (a hang, a delay) give up unanswered, and every
    /// connection is closed, so a client's kept connection is refused, not hung.
    pub fn stop(self) {
        if let Err(e) = self.server.stop() {
            eprintln!("sample API: {e}");
        }
    }
}

/// `tokenusage sample-api`: serves `options` on `listen`, prints the URL on stdout and
/// serves until SIGTERM or SIGINT. Errors only when `listen` cannot be bound.
pub fn run(listen: &str, options: SampleApiOptions) -> io::Result<()> {
    // Handlers first: a signal once the socket exists must find them.
    let stop = signals::shutdown_flag();
    let api = SampleApi::start(listen, options)?;
    let mut stdout = io::stdout();
    // Scripts read the URL from a pipe; a closed pipe must not stop the server.
    let _ = writeln!(stdout, "{}", api.url()).and_then(|()| stdout.flush());
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(100));
    }
    api.stop();
    Ok(())
}
