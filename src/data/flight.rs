//! Calls to the license server in progress, shared by every request of this process that
//! needs the same answer.
//!
//! The first request that needs a part starts its call on a thread of its own; the others
//! wait for that call, never one behind another. A request waits as long as it chooses
//! (a short patience from the call's start when it has older data to show) while the
//! call goes on and lands in the caches for the next view. A call that failed or timed out rests its part for
//! `retry_after`, so ordinary views show the older data at once instead of asking again.
//! I/O: starts threads; what a call does is the caller's closure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::data::license_api::ApiError;
use crate::data::license_api::client::Cause;

/// One call: when it started, and its answer, once landed.
struct Flight<T> {
    started: Instant,
    answer: Mutex<Option<Result<T, ApiError>>>,
    landed: Condvar,
}

/// A started (or joined) call, to wait for.
pub struct Ticket<T>(Arc<Flight<T>>);

impl<T: Clone> Ticket<T> {
    /// When the call started (a request may have joined it later).
    pub fn started(&self) -> Instant {
        self.0.started
    }

    /// The call's answer, waiting until `deadline` at most; `None` when it has not landed
    /// by then (it goes on).
    pub fn wait_until(&self, deadline: Instant) -> Option<Result<T, ApiError>> {
        let mut answer = lock(&self.0.answer);
        loop {
            if let Some(answer) = answer.as_ref() {
                return Some(answer.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            answer = self
                .0
                .landed
                .wait_timeout(answer, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The calls of one kind (one endpoint), by installation.
pub struct Calls<T> {
    state: Arc<Mutex<State<T>>>,
    retry_after: Duration,
}

struct State<T> {
    in_flight: HashMap<PathBuf, Arc<Flight<T>>>,
    /// Installations whose last call failed, and until when (Unix seconds) they rest.
    resting: HashMap<PathBuf, i64>,
}

impl<T: Clone + Send + 'static> Calls<T> {
    /// Calls that rest `retry_after` after a failure (zero: never rest).
    pub fn new(retry_after: Duration) -> Self {
        Calls {
            state: Arc::new(Mutex::new(State {
                in_flight: HashMap::new(),
                resting: HashMap::new(),
            })),
            retry_after,
        }
    }

    /// Until when (Unix seconds) the installation `key` rests after a failed call, if it
    /// does at `now`.
    pub fn resting_until(&self, key: &Path, now: i64) -> Option<i64> {
        lock(&self.state)
            .resting
            .get(key)
            .copied()
            .filter(|until| *until > now)
    }

    /// Joins the call in flight for `key`, or starts `call` on a thread of its own.
    pub fn start(
        &self,
        key: &Path,
        call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Ticket<T> {
        let mut state = lock(&self.state);
        if let Some(flight) = state.in_flight.get(key) {
            return Ticket(flight.clone());
        }
        let flight = Arc::new(Flight {
            started: Instant::now(),
            answer: Mutex::new(None),
            landed: Condvar::new(),
        });
        state.in_flight.insert(key.to_path_buf(), flight.clone());
        drop(state);
        let (shared, owned_key, retry_after) =
            (self.state.clone(), key.to_path_buf(), self.retry_after);
        let landing = flight.clone();
        let spawned = std::thread::Builder::new()
            .name("license-api".into())
            .spawn(move || {
                // A panicking call lands as a failure: waiters must never wait forever.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
                    .unwrap_or_else(|_| Err(ApiError::Connect("the call panicked".into())));
                land(&shared, &owned_key, &landing, answer, retry_after);
            });
        if let Err(error) = spawned {
            let answer = Err(ApiError::Connect(Cause(format!(
                "no thread for the call: {error}"
            ))));
            land(&self.state, key, &flight, answer, retry_after);
        }
        Ticket(flight)
    }
}

/// Stores a call's answer, wakes its waiters, and rests the installation after a failure.
fn land<T>(
    state: &Mutex<State<T>>,
    key: &Path,
    flight: &Arc<Flight<T>>,
    answer: Result<T, ApiError>,
    retry_after: Duration,
) {
    let mut state = lock(state);
    if state
        .in_flight
        .get(key)
        .is_some_and(|current| Arc::ptr_eq(current, flight))
    {
        state.in_flight.remove(key);
    }
    if answer.is_err() && !retry_after.is_zero() {
        let until = chrono::Utc::now().timestamp() + retry_after.as_secs() as i64;
        state.resting.insert(key.to_path_buf(), until);
    } else {
        state.resting.remove(key);
    }
    drop(state);
    *lock(&flight.answer) = Some(answer);
    flight.landed.notify_all();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn requests_for_the_same_part_share_one_call() {
        let calls = Calls::<u32>::new(Duration::ZERO);
        let made = Arc::new(AtomicUsize::new(0));
        let tickets: Vec<_> = (0..5)
            .map(|_| {
                let made = made.clone();
                calls.start(Path::new("/site/ct"), move || {
                    made.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(7)
                })
            })
            .collect();
        for ticket in tickets {
            assert_eq!(ticket.wait_until(soon(5_000)).unwrap().unwrap(), 7);
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
        // Landed: the next request starts a new call.
        let again = calls.start(Path::new("/site/ct"), || Ok(8));
        assert_eq!(again.wait_until(soon(5_000)).unwrap().unwrap(), 8);
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline_while_the_call_goes_on() {
        let calls = Calls::<u32>::new(Duration::ZERO);
        let ticket = calls.start(Path::new("/a"), || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(1)
        });
        let start = Instant::now();
        assert!(ticket.wait_until(soon(50)).is_none());
        assert!(start.elapsed() < Duration::from_millis(250));
        // A later waiter joins the same call, started before it came.
        let joined = calls.start(Path::new("/a"), || Ok(2));
        assert_eq!(joined.started(), ticket.started());
        assert_eq!(joined.wait_until(soon(5_000)).unwrap().unwrap(), 1);
    }

    #[test]
    fn a_failed_call_rests_its_installation_and_a_good_one_ends_the_rest() {
        let calls = Calls::<u32>::new(Duration::from_secs(30));
        let now = chrono::Utc::now().timestamp();
        let failed = calls.start(Path::new("/a"), || Err(ApiError::Status(500)));
        assert!(failed.wait_until(soon(5_000)).unwrap().is_err());
        let until = calls.resting_until(Path::new("/a"), now).unwrap();
        assert!((now + 29..=now + 31).contains(&until), "{until}");
        assert_eq!(calls.resting_until(Path::new("/a"), until), None);
        assert_eq!(calls.resting_until(Path::new("/b"), now), None);
        let good = calls.start(Path::new("/a"), || Ok(1));
        assert!(good.wait_until(soon(5_000)).unwrap().is_ok());
        assert_eq!(calls.resting_until(Path::new("/a"), now), None);
    }

    #[test]
    fn a_panicking_call_lands_as_a_failure() {
        let calls = Calls::<u32>::new(Duration::ZERO);
        let ticket = calls.start(Path::new("/a"), || panic!("boom"));
        assert!(matches!(
            ticket.wait_until(soon(5_000)),
            Some(Err(ApiError::Connect(_)))
        ));
    }
}
