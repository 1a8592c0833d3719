//! When the poll loop closes a connection: the deadline of the phase it is in, which one
//! makes room when a new connection arrives at the cap, how large the cap may be, and
//! which TCP peers are refused at accept.
//!
//! Pure: times and the open-file limit are passed in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Where a connection waiting in the poll loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Accepted, nothing received yet: web servers send their request at once, so the
    /// head deadline runs from the accept.
    Fresh,
    /// Receiving a request head (or any record): due whole within the head deadline of
    /// its first byte.
    Head,
    /// Kept alive between requests, nothing received.
    Idle,
    /// Answered with a refusal and half-closed: what still comes is read and dropped so
    /// the peer can read the answer, for a short while.
    Closing,
}

/// How long each phase may last.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub head: Duration,
    pub idle: Duration,
    pub linger: Duration,
}

impl Phase {
    /// When a connection that entered this phase at `since` is closed.
    pub(super) fn deadline(self, since: Instant, timeouts: &Timeouts) -> Instant {
        since
            + match self {
                Phase::Fresh | Phase::Head => timeouts.head,
                Phase::Idle => timeouts.idle,
                Phase::Closing => timeouts.linger,
            }
    }

    /// The order in which connections are given up to make room: closing ones first,
    /// then those with no request in progress, and the heads being read last.
    fn expendability(self) -> u8 {
        match self {
            Phase::Closing => 0,
            Phase::Fresh | Phase::Idle => 1,
            Phase::Head => 2,
        }
    }
}

/// The connection to close so that a new one fits under the cap: the first group of
/// [`Phase::expendability`] that has any, and in it the one silent longest (`last_input`
/// is when its latest byte came, or when it was accepted or went idle). `None` when there
/// is no candidate: connections with the workers are never offered.
pub(super) fn victim<K>(candidates: impl IntoIterator<Item = (K, Phase, Instant)>) -> Option<K> {
    candidates
        .into_iter()
        .min_by_key(|(_, phase, last_input)| (phase.expendability(), *last_input))
        .map(|(key, _, _)| key)
}

/// Descriptors kept for what the process opens besides connections: stdio, the listener,
/// the wake-up pair, and per worker the license API sockets, cache, lock and session
/// files a request opens.
fn reserved_descriptors(workers: usize) -> u64 {
    32 + 8 * workers as u64
}

/// Never fewer than this many connections, however low the open-file limit: below it the
/// server could not work at all, and `accept` failing with EMFILE is handled anyway.
const MIN_CONNECTIONS: u64 = 16;

/// The connection cap in force: `configured`, lowered to fit the open-file limit
/// (RLIMIT_NOFILE's soft value, `None` when unknown or unlimited) after the
/// descriptors the workers need.
pub(super) fn connection_cap(configured: usize, workers: usize, open_files: Option<u64>) -> usize {
    let configured = configured.max(1);
    let Some(limit) = open_files else {
        return configured;
    };
    let room = limit
        .saturating_sub(reserved_descriptors(workers))
        .max(MIN_CONNECTIONS);
    usize::try_from(room).map_or(configured, |room| configured.min(room))
}

/// The peers a TCP listener accepts, like php-fpm's `listen.allowed_clients`: any, or
/// only the addresses listed (an IPv4 peer reaching an IPv6 socket as `::ffff:a.b.c.d`
/// counts as `a.b.c.d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedClients {
    Any,
    Only(Vec<IpAddr>),
}

impl Default for AllowedClients {
    /// Loopback only: 127.0.0.1 and ::1.
    fn default() -> Self {
        AllowedClients::Only(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ])
    }
}

impl AllowedClients {
    /// Whether a connection from `peer` is served.
    pub fn permits(&self, peer: IpAddr) -> bool {
        match self {
            AllowedClients::Any => true,
            AllowedClients::Only(allowed) => allowed.contains(&peer.to_canonical()),
        }
    }
}

impl FromStr for AllowedClients {
    type Err = String;

    /// `any`, or addresses separated by commas (spaces around them ignored):
    /// `127.0.0.1,::1,10.0.0.5`.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("any") {
            return Ok(AllowedClients::Any);
        }
        text.split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<IpAddr>()
                    .map(|ip| ip.to_canonical())
                    .map_err(|_| format!("{part:?} is not an IP address (or give `any`)"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedClients::Only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        head: Duration::from_secs(10),
        idle: Duration::from_secs(75),
        linger: Duration::from_secs(2),
    };

    #[test]
    fn a_head_is_due_ten_seconds_after_it_began_and_an_idle_connection_after_75() {
        let t0 = Instant::now();
        assert_eq!(Phase::Fresh.deadline(t0, &TIMEOUTS), t0 + TIMEOUTS.head);
        assert_eq!(Phase::Head.deadline(t0, &TIMEOUTS), t0 + TIMEOUTS.head);
        assert_eq!(Phase::Idle.deadline(t0, &TIMEOUTS), t0 + TIMEOUTS.idle);
        assert_eq!(Phase::Closing.deadline(t0, &TIMEOUTS), t0 + TIMEOUTS.linger);
    }

    #[test]
    fn the_cap_closes_the_longest_silent_idle_connection_before_any_head() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let open = [
            ("old trickler", Phase::Head, at(0)),
            ("idle keep-alive", Phase::Idle, at(5)),
            ("silent new", Phase::Fresh, at(3)),
            ("recent trickler", Phase::Head, at(9)),
        ];
        assert_eq!(victim(open), Some("silent new"));
        assert_eq!(
            victim(open.into_iter().filter(|c| c.0 != "silent new")),
            Some("idle keep-alive")
        );
    }

    #[test]
    fn with_only_heads_open_the_cap_closes_the_longest_silent_trickler() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let heads = [
            ("fast", Phase::Head, at(9)),
            ("slowest", Phase::Head, at(1)),
            ("slow", Phase::Head, at(4)),
        ];
        assert_eq!(victim(heads), Some("slowest"));
    }

    #[test]
    fn a_closing_connection_goes_first_and_no_candidate_means_no_victim() {
        let t0 = Instant::now();
        let open = [
            ("idle", Phase::Idle, t0),
            ("closing", Phase::Closing, t0 + Duration::from_secs(1)),
        ];
        assert_eq!(victim(open), Some("closing"));
        assert_eq!(victim(Vec::<(u8, Phase, Instant)>::new()), None);
    }

    #[test]
    fn the_cap_fits_the_open_file_limit_after_the_workers_descriptors() {
        assert_eq!(connection_cap(1024, 16, None), 1024);
        assert_eq!(connection_cap(1024, 16, Some(20_000)), 1024);
        // systemd's default soft limit: 1024 - (32 + 8 x 16).
        assert_eq!(connection_cap(1024, 16, Some(1024)), 864);
        assert_eq!(connection_cap(1024, 2, Some(64)), 16);
        assert_eq!(connection_cap(1024, 16, Some(14)), 16);
        assert_eq!(connection_cap(5, 16, Some(1024)), 5);
        assert_eq!(connection_cap(0, 16, Some(u64::MAX)), 1);
    }

    #[test]
    fn by_default_only_loopback_clients_are_allowed() {
        let allowed = AllowedClients::default();
        assert!(allowed.permits("127.0.0.1".parse().unwrap()));
        assert!(allowed.permits("::1".parse().unwrap()));
        assert!(allowed.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allowed.permits("127.0.0.2".parse().unwrap()));
        assert!(!allowed.permits("10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn allowed_clients_are_any_or_a_list_of_addresses() {
        assert_eq!("any".parse(), Ok(AllowedClients::Any));
        assert_eq!(" ANY ".parse(), Ok(AllowedClients::Any));
        let allowed: AllowedClients = "10.0.0.5, ::ffff:192.168.1.2,fe80::1".parse().unwrap();
        assert!(allowed.permits("10.0.0.5".parse().unwrap()));
        assert!(allowed.permits("192.168.1.2".parse().unwrap()));
        assert!(allowed.permits("::ffff:10.0.0.5".parse().unwrap()));
        assert!(allowed.permits("fe80::1".parse().unwrap()));
        assert!(!allowed.permits("127.0.0.1".parse().unwrap()));
        assert!(AllowedClients::Any.permits("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn allowed_clients_refuse_what_is_not_an_address() {
        for text in ["", "10.0.0.0/8", "localhost", "10.0.0.5,", "any,10.0.0.5"] {
            let error = text.parse::<AllowedClients>().unwrap_err();
            assert!(error.contains("not an IP address"), "{text}: {error}");
        }
    }
}
