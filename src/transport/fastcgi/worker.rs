//! The worker pool: each worker takes a complete request from the poll loop, runs the
//! handler, writes the response as STDOUT records within the response deadline, and hands
//! a keep-alive connection back to the poll loop.
//!
//! I/O: writes to the connection's socket (non-blocking, waited on with poll(2) up to the
//! deadline), one byte to the poll loop's wake-up socket, `tokenusage: ` lines on stderr.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::protocol::Complete;
use super::{Conn, Handler, Stream, is_disconnect, wait_for};
use crate::transport::fastcgi::codec::{self as codec, ProtocolStatus, RecordType};
use crate::transport::response::Response;

/// A complete request and its connection, on their way to a worker.
pub(super) struct Job {
    pub conn: Conn,
    pub complete: Complete,
    /// Answers the poll loop had not sent yet (a CANT_MPX_CONN refusal, say): they go
    /// out before the response.
    pub preface: Vec<u8>,
    /// Counts the connection as open until the worker is done with it.
    pub ticket: Ticket,
}

/// One connection lent to the workers; dropping it gives the count back.
pub(super) struct Ticket(Arc<AtomicUsize>);

impl Ticket {
    pub(super) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Ticket(Arc::clone(count))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every worker shares.
pub(super) struct Context {
    pub handler: Handler,
    /// The longest writing one response may take, whole (zero: no limit).
    pub write_timeout: Duration,
    /// Keep-alive connections go back to the poll loop here...
    pub back: Sender<Conn>,
    /// ... and a byte here wakes it.
    pub wake: UnixStream,
    /// Bytes of the requests queued or being handled (the poll loop's memory budget).
    pub queued_bytes: Arc<AtomicUsize>,
}

/// The worker threads.
pub(super) struct Pool {
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `workers` threads taking jobs from `jobs` until it is closed.
    pub(super) fn start(workers: usize, jobs: Receiver<Job>, context: Context) -> io::Result<Pool> {
        let jobs = Arc::new(Mutex::new(jobs));
        let context = Arc::new(context);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (jobs, context) = (Arc::clone(&jobs), Arc::clone(&context));
            let spawned = thread::Builder::new()
                .name(format!("fastcgi-{i}"))
                .spawn(move || work(&jobs, &context));
            match spawned {
                Ok(thread) => threads.push(thread),
                // The threads started so far end when `serve` returns and drops the
                // sending side of `jobs`.
                Err(err) => return Err(err),
            }
        }
        Ok(Pool { threads })
    }

    /// Waits for the workers to finish the queued jobs, at most `limit`; true when they did.
    pub(super) fn finish(self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut all = true;
        for thread in self.threads {
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                all = false;
            }
        }
        all
    }
}

/// A worker: answers jobs until the queue is closed and empty.
fn work(jobs: &Mutex<Receiver<Job>>, context: &Context) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        let bytes = job.complete.bytes;
        // The handler's panics are caught per request; this guard keeps a bug elsewhere
        // from shrinking the pool.
        if panic::catch_unwind(AssertUnwindSafe(|| answer(job, context))).is_err() {
            eprintln!("tokenusage: fastcgi: connection handler panicked");
        }
        context.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
    }
}

fn answer(job: Job, context: &Context) {
    let Job {
        mut conn,
        complete,
        preface,
        ticket,
    } = job;
    let response = super::super::handle_or_500("fastcgi", &*context.handler, &complete.request);
    drop(complete.request);
    let deadline = Some(context.write_timeout)
        .filter(|timeout| !timeout.is_zero())
        .map(|timeout| Instant::now() + timeout);
    let sent = send_response(&mut conn.stream, &preface, complete.id, &response, deadline);
    match sent {
        Ok(()) if complete.keep_conn => give_back(conn, context),
        Ok(()) => {}
        Err(err) if is_disconnect(&err) => {}
        Err(err) => eprintln!("tokenusage: fastcgi: closing connection: {err}"),
    }
    drop(ticket);
}

/// Returns a keep-alive connection to the poll loop and wakes it.
fn give_back(conn: Conn, context: &Context) {
    let sent = context.back.send(conn);
    // Gone only once the poll loop has stopped: the connection then just closes.
    if sent.is_ok() {
        // A full wake-up socket already holds a wake-up.
        let _ = (&context.wake).write(&[1]);
    }
}

/// Writes `preface`, then the response as STDOUT records, the empty STDOUT and
/// END_REQUEST, giving up at `deadline`: a peer that never reads cannot hold a worker.
pub(super) fn send_response(
    stream: &mut Stream,
    preface: &[u8],
    id: u16,
    response: &Response,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let mut out = DeadlineWriter { stream, deadline };
    out.write_all(preface)?;
    let mut records = StdoutRecords::new(&mut out, id);
    response.write_cgi(&mut records)?;
    records.finish()
}

/// Writes to a non-blocking socket, waiting for room until a deadline for all the writes.
struct DeadlineWriter<'a> {
    stream: &'a mut Stream,
    deadline: Option<Instant>,
}

impl Write for DeadlineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
            let left = match self.deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => deadline
                    .checked_duration_since(Instant::now())
                    .filter(|left| !left.is_zero())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::TimedOut, "the response was not read in time")
                    })?,
            };
            wait_for(self.stream.as_raw_fd(), libc::POLLOUT, left)?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a response as STDOUT records while it is produced, holding at most one
/// record's content: a 1.5 MB CSV is not copied whole, twice, per request in flight.
struct StdoutRecords<'a, W: Write> {
    out: &'a mut W,
    id: u16,
    /// The record being filled: room for its header, then its content; the data is
    /// copied once, into here, and the header written in front when it is sent.
    record: Vec<u8>,
}

impl<'a, W: Write> StdoutRecords<'a, W> {
    fn new(out: &'a mut W, id: u16) -> Self {
        let mut record = Vec::with_capacity(codec::HEADER_LEN + codec::MAX_CONTENT_LEN + 8);
        record.resize(codec::HEADER_LEN, 0);
        StdoutRecords { out, id, record }
    }

    fn content_len(&self) -> usize {
        self.record.len() - codec::HEADER_LEN
    }

    fn send_record(&mut self) -> io::Result<()> {
        let len = self.content_len();
        let header = codec::record_header(RecordType::Stdout, self.id, len);
        self.record[..codec::HEADER_LEN].copy_from_slice(&header);
        self.record
            .resize(self.record.len() + codec::padding(len), 0);
        self.out.write_all(&self.record)?;
        self.record.truncate(codec::HEADER_LEN);
        Ok(())
    }

    /// Sends what is left, the empty STDOUT that ends the stream, and END_REQUEST.
    fn finish(mut self) -> io::Result<()> {
        if self.content_len() > 0 {
            self.send_record()?;
        }
        self.record.clear();
        codec::encode_stream(&mut self.record, RecordType::Stdout, self.id, &[]);
        codec::encode_end_request(
            &mut self.record,
            self.id,
            0,
            ProtocolStatus::RequestComplete,
        );
        self.out.write_all(&self.record)?;
        self.out.flush()
    }
}

impl<W: Write> Write for StdoutRecords<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = codec::MAX_CONTENT_LEN - self.content_len();
        let taken = room.min(data.len());
        self.record.extend_from_slice(&data[..taken]);
        if self.content_len() == codec::MAX_CONTENT_LEN {
            self.send_record()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::fastcgi::codec::Decoder;

    #[test]
    fn a_large_response_goes_out_in_full_records_then_the_empty_one_and_end_request() {
        let mut out = Vec::new();
        let mut records = StdoutRecords::new(&mut out, 7);
        records.write_all(&vec![b'x'; 150_000]).unwrap();
        records.finish().unwrap();
        let mut decoder = Decoder::new();
        decoder.feed(&out);
        let sizes: Vec<(RecordType, usize)> = std::iter::from_fn(|| decoder.next_record().unwrap())
            .map(|r| (r.kind, r.content.len()))
            .collect();
        assert_eq!(
            sizes,
            [
                (RecordType::Stdout, 65535),
                (RecordType::Stdout, 65535),
                (RecordType::Stdout, 150_000 - 2 * 65535),
                (RecordType::Stdout, 0),
                (RecordType::EndRequest, 8),
            ]
        );
    }

    #[test]
    fn a_peer_that_never_reads_makes_the_response_time_out_at_the_deadline() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut stream = Stream::Unix(ours);
        let response = Response::text(200, vec![b'x'; 4 << 20]);
        let started = Instant::now();
        let deadline = Some(started + Duration::from_millis(300));
        let err = send_response(&mut stream, &[], 1, &response, deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
