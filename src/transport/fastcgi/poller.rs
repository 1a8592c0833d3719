//! The poll loop: one thread that accepts connections, reads request heads, answers what
//! needs no handler (GET_VALUES, UNKNOWN_TYPE, refusals) and watches idle keep-alive
//! connections, with poll(2). A complete request goes to the worker pool together with
//! its connection; a keep-alive connection comes back here once answered.
//!
//! Nothing a peer does here can hold a worker, and nothing lasts: a request head is due
//! whole within the head deadline, an idle connection is closed after the idle timeout,
//! the open connections are capped (the longest-silent idle one makes room for a new
//! one), and the bytes of request heads and queued requests are budgeted (the largest
//! head in progress is closed first).
//!
//! I/O: poll(2), accept(2), non-blocking reads and writes on the connections, the
//! wake-up socket the workers write to, `tokenusage: ` lines on stderr.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::policy::{self, AllowedClients, Phase, Timeouts};
use super::protocol::{Complete, Flow, Session, Values};
use super::worker::{Job, Ticket};
use super::{
    ACCEPT_RETRY, Conn, DRAIN_DEADLINE, LINGER, Listener, ServerOptions, Stream, TICK,
    is_disconnect, is_transient,
};
use crate::transport::fastcgi::codec::{CodecError, Decoder, Limits};
use crate::transport::systemd;

/// How long a connection accepted just before shutdown may take to send its request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);
/// Connections accepted per poll at most: a flood of them must not stop the loop from
/// serving the others.
const ACCEPT_BATCH: usize = 256;
/// At most one summary of the connections closed for cause per this long.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What the loop is given by [`super::serve`].
pub(super) struct Setup {
    /// With the workers and the connection cap in force.
    pub options: ServerOptions,
    pub jobs: Sender<Job>,
    pub returned: Receiver<Conn>,
    /// The read end of the socket the workers write a byte to after returning a
    /// connection.
    pub wake: UnixStream,
    pub queued_bytes: Arc<AtomicUsize>,
    pub shutdown: Arc<AtomicBool>,
}

/// Serves until shutdown is requested, then removes the socket file, takes the
/// connections already waiting in the backlog, and returns once every request that was
/// begun has been read and handed to the workers (10 s at most).
pub(super) fn run(listener: &mut Listener, setup: Setup) {
    let options = &setup.options;
    let rules = Rules {
        limits: options.limits,
        values: Values {
            max_conns: options.max_connections.to_string(),
            max_reqs: options.workers.to_string(),
        },
        timeouts: Timeouts {
            head: options.head_timeout,
            idle: options.idle_timeout,
            linger: LINGER,
        },
        cap: options.max_connections,
        budget: options.max_buffered_bytes,
        allowed_clients: options.allowed_clients.clone(),
    };
    let mut poller = Poller {
        listener,
        rules,
        peers: Vec::new(),
        jobs: setup.jobs,
        returned: setup.returned,
        wake: setup.wake,
        queued_bytes: setup.queued_bytes,
        lent: Arc::new(AtomicUsize::new(0)),
        shutdown: setup.shutdown,
        accept_again: None,
        drain: None,
        buf: vec![0; 64 * 1024],
        tally: Tally::default(),
    };
    poller.run();
}

/// The fixed rules of this server.
struct Rules {
    limits: Limits,
    values: Values,
    timeouts: Timeouts,
    cap: usize,
    budget: usize,
    allowed_clients: AllowedClients,
}

struct Poller<'a> {
    listener: &'a mut Listener,
    rules: Rules,
    peers: Vec<Peer>,
    jobs: Sender<Job>,
    returned: Receiver<Conn>,
    wake: UnixStream,
    queued_bytes: Arc<AtomicUsize>,
    /// Connections with the workers (counted by their [`Ticket`]s).
    lent: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
    /// After a failed `accept()`: when to try again.
    accept_again: Option<Instant>,
    /// Once shutdown began: when the loop stops waiting for request heads.
    drain: Option<Instant>,
    /// One read buffer for every connection.
    buf: Vec<u8>,
    tally: Tally,
}

impl Poller<'_> {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            if self.drain.is_none() && self.shutdown.load(Ordering::SeqCst) {
                self.begin_drain(now);
            }
            if let Some(deadline) = self.drain {
                self.close_idle_for_drain(now);
                self.reap();
                if self.peers.is_empty() || now >= deadline {
                    return;
                }
            }
            self.poll_once();
            self.tally.report(Instant::now(), &self.rules);
        }
    }

    /// Stops new arrivals, then takes the connections waiting in the backlog: dropping
    /// them would make the web server answer 502.
    fn begin_drain(&mut self, now: Instant) {
        systemd::notify_stopping();
        self.listener.unlink();
        self.drain = Some(now + DRAIN_DEADLINE);
        self.accept_all(now, self.rules.cap);
    }

    /// While draining, a connection with no request in progress is closed: at once when
    /// it was answered before, after a moment to send its first request when it is new.
    fn close_idle_for_drain(&mut self, now: Instant) {
        for peer in self
            .peers
            .iter_mut()
            .filter(|p| p.stays() && p.out.is_empty())
        {
            let done = match peer.phase {
                Phase::Idle => true,
                Phase::Fresh => now.duration_since(peer.since) >= FIRST_REQUEST_GRACE,
                Phase::Head | Phase::Closing => false,
            };
            if done {
                peer.fate = Fate::Close(Reason::Done);
            }
        }
    }

    /// One poll(2) and what follows from it.
    fn poll_once(&mut self) {
        let reading = self.reading();
        let accepting = self.accepting(Instant::now());
        let mut fds = Vec::with_capacity(2 + self.peers.len());
        fds.push(pollfd(self.wake.as_raw_fd(), libc::POLLIN));
        let listener = if accepting {
            self.listener.raw_fd()
        } else {
            -1
        };
        fds.push(pollfd(listener, libc::POLLIN));
        for peer in &self.peers {
            let events = peer.interest(reading);
            let fd = if events == 0 {
                -1
            } else {
                peer.conn.stream.as_raw_fd()
            };
            fds.push(pollfd(fd, events));
        }
        if let Err(err) = poll(&mut fds, self.timeout(Instant::now())) {
            eprintln!("tokenusage: fastcgi: poll failed: {err}");
            thread::sleep(ACCEPT_RETRY);
            return;
        }
        let now = Instant::now();
        for (i, fd) in fds.iter().skip(2).enumerate() {
            if fd.revents != 0 {
                self.on_events(i, fd.revents, now);
            }
        }
        if fds[0].revents != 0 {
            // One read: wake-up bytes left over make the next poll return at once,
            // which is what they are for.
            let _ = (&self.wake).read(&mut [0u8; 256]);
        }
        while let Ok(conn) = self.returned.try_recv() {
            self.take_back(conn, now);
        }
        if fds[1].revents != 0 {
            self.accept_all(now, ACCEPT_BATCH);
        }
        self.enforce_deadlines(now);
        self.enforce_budget();
        self.reap();
    }

    /// False while the requests queued for the workers exceed the memory budget: reading
    /// more would only hold more.
    fn reading(&self) -> bool {
        self.queued_bytes.load(Ordering::SeqCst) <= self.rules.budget
    }

    fn accepting(&self, now: Instant) -> bool {
        self.drain.is_none()
            && self.accept_again.is_none_or(|again| now >= again)
            && (self.open() < self.rules.cap || self.peers.iter().any(Peer::stays))
    }

    /// Open connections: those here that stay, and those with the workers.
    fn open(&self) -> usize {
        self.peers.iter().filter(|p| p.stays()).count() + self.lent.load(Ordering::SeqCst)
    }

    /// Until the nearest deadline, the retry of `accept()` or the next look at the
    /// shutdown flag, whichever comes first.
    fn timeout(&self, now: Instant) -> Duration {
        let deadlines = self.peers.iter().map(|p| p.deadline(&self.rules.timeouts));
        let wake_at = deadlines
            .chain(self.accept_again.filter(|again| *again > now))
            .chain(self.drain)
            .fold(now + TICK, Instant::min);
        wake_at.saturating_duration_since(now)
    }

    fn on_events(&mut self, i: usize, revents: libc::c_short, now: Instant) {
        let Some(peer) = self.peers.get_mut(i) else {
            return;
        };
        if revents & libc::POLLOUT != 0 {
            peer.flush();
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            peer.read(&mut self.buf, now);
        }
        peer.advance(&self.rules, now);
    }

    /// Accepts connections until none is waiting, at most `most`; past the cap, each one
    /// makes room by closing another (see [`policy::victim`]). With every connection at
    /// the workers, new ones wait in the kernel's backlog.
    fn accept_all(&mut self, now: Instant, most: usize) {
        let mut open = self.open();
        for _ in 0..most {
            let full = open >= self.rules.cap;
            if full && !self.peers.iter().any(Peer::stays) {
                return;
            }
            match self.listener.accept() {
                Ok((_, Some(peer))) if !self.rules.allowed_clients.permits(peer) => {
                    // Like php-fpm's listen.allowed_clients: one line per refusal.
                    eprintln!(
                        "tokenusage: fastcgi: connection from {peer} closed: not in \
                         --allow-clients"
                    );
                }
                Ok((stream, _)) => {
                    if full && self.make_room(Reason::Cap) {
                        open -= 1;
                    }
                    self.admit(stream, now);
                    open += 1;
                }
                Err(err) if is_transient(&err) => return,
                Err(err) => {
                    eprintln!("tokenusage: fastcgi: accept failed, retrying: {err}");
                    // Out of descriptors: an idle connection's is the one to give back.
                    if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                        self.make_room(Reason::Descriptors);
                    }
                    self.accept_again = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Closes the connection [`policy::victim`] picks; false when there is none.
    fn make_room(&mut self, reason: Reason) -> bool {
        let candidates = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.stays())
            .map(|(i, p)| (i, p.phase, p.last_input));
        let Some(i) = policy::victim(candidates) else {
            return false;
        };
        self.peers[i].fate = Fate::Close(reason);
        true
    }

    fn admit(&mut self, stream: Stream, now: Instant) {
        if let Err(err) = stream.set_nonblocking() {
            eprintln!("tokenusage: fastcgi: cannot set up connection: {err}");
            return;
        }
        let mut peer = Peer::new(Conn::new(stream), Phase::Fresh, now);
        // Web servers write the request as soon as they are connected: read it now
        // rather than after one more poll.
        if self.reading() {
            peer.read(&mut self.buf, now);
            peer.advance(&self.rules, now);
        }
        self.peers.push(peer);
    }

    /// A keep-alive connection answered by a worker waits here for its next request.
    fn take_back(&mut self, conn: Conn, now: Instant) {
        let pipelined = !conn.decoder.is_empty();
        let mut peer = Peer::new(conn, Phase::Idle, now);
        if pipelined {
            peer.phase = Phase::Head;
            peer.advance(&self.rules, now);
        }
        self.peers.push(peer);
    }

    fn enforce_deadlines(&mut self, now: Instant) {
        let timeouts = &self.rules.timeouts;
        for peer in self.peers.iter_mut().filter(|p| p.stays()) {
            if now >= peer.deadline(timeouts) {
                peer.fate = Fate::Close(Reason::Deadline(peer.phase));
            }
        }
    }

    /// Over the budget, closes the largest request heads until it holds again.
    fn enforce_budget(&mut self) {
        let queued = self.queued_bytes.load(Ordering::SeqCst);
        let held: usize = self
            .peers
            .iter()
            .filter(|p| p.stays())
            .map(Peer::held)
            .sum();
        let mut total = queued + held;
        while total > self.rules.budget {
            let largest = self
                .peers
                .iter_mut()
                .filter(|p| p.stays() && p.held() > 0)
                .max_by_key(|p| p.held());
            let Some(peer) = largest else {
                return;
            };
            total -= peer.held();
            peer.fate = Fate::Close(Reason::Budget);
        }
    }

    /// Hands complete requests to the workers and closes what is done.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].stays() {
                i += 1;
                continue;
            }
            let Peer {
                conn, out, fate, ..
            } = self.peers.swap_remove(i);
            match fate {
                Fate::Dispatch(complete) => self.dispatch(conn, complete, out),
                Fate::Close(reason) => self.tally.count(reason),
                Fate::Stay => {}
            }
        }
    }

    fn dispatch(&mut self, conn: Conn, complete: Complete, preface: Vec<u8>) {
        let bytes = complete.bytes;
        self.queued_bytes.fetch_add(bytes, Ordering::SeqCst);
        let job = Job {
            conn,
            complete,
            preface,
            ticket: Ticket::new(&self.lent),
        };
        if self.jobs.send(job).is_err() {
            // Only if every worker died, which catch_unwind prevents: the connection
            // closes and the web server answers 502.
            self.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
            eprintln!("tokenusage: fastcgi: all FastCGI workers have stopped");
        }
    }
}

/// Why a connection was closed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The conversation ended (Close, a refusal's linger, shutdown) or the peer left.
    Done,
    Deadline(Phase),
    Cap,
    Descriptors,
    Budget,
}

#[derive(Debug)]
enum Fate {
    Stay,
    Close(Reason),
    Dispatch(Complete),
}

/// A connection in the loop.
struct Peer {
    conn: Conn,
    session: Session,
    /// Answers not yet sent (GET_VALUES, refusals); while any are left, nothing more is
    /// read or decoded from this peer.
    out: Vec<u8>,
    phase: Phase,
    /// When the phase began (a fresh connection's: the accept).
    since: Instant,
    /// When the latest byte came (or the connection was accepted or went idle).
    last_input: Instant,
    /// Close once `out` is sent.
    close_after_flush: bool,
    /// A closing connection's write side is shut.
    half_closed: bool,
    fate: Fate,
}

impl Peer {
    fn new(conn: Conn, phase: Phase, now: Instant) -> Self {
        Peer {
            conn,
            session: Session::default(),
            out: Vec::new(),
            phase,
            since: now,
            last_input: now,
            close_after_flush: false,
            half_closed: false,
            fate: Fate::Stay,
        }
    }

    fn stays(&self) -> bool {
        matches!(self.fate, Fate::Stay)
    }

    fn deadline(&self, timeouts: &Timeouts) -> Instant {
        self.phase.deadline(self.since, timeouts)
    }

    /// Bytes held for this peer's request.
    fn held(&self) -> usize {
        self.session.buffered() + self.conn.decoder.buffered()
    }

    /// The poll(2) events wanted: to send what is pending, else to read (unless reading
    /// is paused; a closing peer's input is always read, to be dropped).
    fn interest(&self, reading: bool) -> libc::c_short {
        if !self.stays() {
            0
        } else if !self.out.is_empty() {
            libc::POLLOUT
        } else if reading || self.phase == Phase::Closing {
            libc::POLLIN
        } else {
            0
        }
    }

    /// One non-blocking read into the decoder (dropped when closing).
    fn read(&mut self, buf: &mut [u8], now: Instant) {
        match self.conn.stream.read(buf) {
            Ok(0) => self.fate = Fate::Close(Reason::Done),
            Ok(_) if self.phase == Phase::Closing => {}
            Ok(n) => {
                self.conn.decoder.feed(&buf[..n]);
                self.last_input = now;
                match self.phase {
                    Phase::Idle => (self.phase, self.since) = (Phase::Head, now),
                    // The first request's deadline runs from the accept.
                    Phase::Fresh => self.phase = Phase::Head,
                    Phase::Head | Phase::Closing => {}
                }
            }
            Err(err) if is_transient(&err) => {}
            Err(err) => self.fail(&err),
        }
    }

    /// Sends what is pending; true when nothing is left.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.conn.stream.write(&self.out) {
                Ok(0) => {
                    self.fate = Fate::Close(Reason::Done);
                    return false;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
                Err(err) => {
                    self.fail(&err);
                    return false;
                }
            }
        }
        true
    }

    fn fail(&mut self, err: &io::Error) {
        if !is_disconnect(err) {
            eprintln!("tokenusage: fastcgi: connection error: {err}");
        }
        self.fate = Fate::Close(Reason::Done);
    }

    /// Takes the records received so far, until a request is complete, an answer cannot
    /// be sent yet, or the bytes run out.
    fn advance(&mut self, rules: &Rules, now: Instant) {
        loop {
            if !self.flush() || !self.stays() {
                return;
            }
            if self.phase == Phase::Closing {
                if !self.half_closed {
                    self.half_closed = true;
                    let _ = self.conn.stream.shutdown_write();
                }
                return;
            }
            if self.close_after_flush {
                self.fate = Fate::Close(Reason::Done);
                return;
            }
            let flow = match self.conn.decoder.next_record() {
                Ok(None) => break,
                Ok(Some(record)) => {
                    self.session
                        .on_record(record, &rules.limits, &rules.values, &mut self.out)
                }
                Err(err) => Err(err),
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) => self.close_after_flush = true,
                Ok(Flow::Dispatch(complete)) => {
                    self.fate = Fate::Dispatch(complete);
                    return;
                }
                Err(err) => self.refuse(&err, now),
            }
        }
        if self.conn.decoder.is_empty() {
            // Frees the room a large request left in it, while the connection idles.
            self.conn.decoder = Decoder::new();
            if self.phase == Phase::Head && !self.session.in_progress() {
                (self.phase, self.since) = (Phase::Idle, now);
            }
        }
    }

    /// After malformed or oversized input: answers the request in progress, if any, with
    /// an error page, then lingers so the peer can read it; else just closes.
    fn refuse(&mut self, err: &CodecError, now: Instant) {
        eprintln!("tokenusage: fastcgi: closing connection: {err}");
        self.conn.decoder = Decoder::new();
        if self.session.refuse(err, &mut self.out) {
            (self.phase, self.since) = (Phase::Closing, now);
        } else {
            self.close_after_flush = true;
        }
    }
}

/// Connections closed for cause, summed up on stderr at most once a minute: the first at
/// once, so an attack shows in the log without flooding it.
#[derive(Default)]
struct Tally {
    slow: usize,
    cap: usize,
    budget: usize,
    last_report: Option<Instant>,
}

impl Tally {
    fn count(&mut self, reason: Reason) {
        match reason {
            Reason::Deadline(Phase::Fresh | Phase::Head) => self.slow += 1,
            Reason::Cap | Reason::Descriptors => self.cap += 1,
            Reason::Budget => self.budget += 1,
            Reason::Done | Reason::Deadline(Phase::Idle | Phase::Closing) => {}
        }
    }

    fn report(&mut self, now: Instant, rules: &Rules) {
        if self.slow + self.cap + self.budget == 0
            || self
                .last_report
                .is_some_and(|last| now.duration_since(last) < REPORT_EVERY)
        {
            return;
        }
        let mut parts = Vec::new();
        if self.slow > 0 {
            let secs = rules.timeouts.head.as_secs_f64();
            parts.push(format!(
                "{} sent no whole request within {secs} s",
                self.slow
            ));
        }
        if self.cap > 0 {
            let cap = rules.cap;
            parts.push(format!(
                "{} made room for new ones (at most {cap} open)",
                self.cap
            ));
        }
        if self.budget > 0 {
            let mib = rules.budget >> 20;
            parts.push(format!(
                "{} held the largest request heads over the {mib} MiB budget",
                self.budget
            ));
        }
        eprintln!(
            "tokenusage: fastcgi: closed connections: {}",
            parts.join("; ")
        );
        *self = Tally {
            last_report: Some(now),
            ..Tally::default()
        };
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2) over `fds` for at most `timeout` (rounded up to a millisecond, so a deadline
/// a fraction of one away is not a busy loop); an interrupted call is no error.
fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<()> {
    let millis = timeout.as_micros().div_ceil(1000);
    let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a valid slice of pollfd of the length passed.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
        for fd in fds.iter_mut() {
            fd.revents = 0;
        }
    }
    Ok(())
}
