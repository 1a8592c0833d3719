//! systemd: socket activation (the listening socket on fd 3, named by `LISTEN_FDS` and
//! `LISTEN_PID`, see sd_listen_fds(3)) and readiness notification (`READY=1`,
//! `STOPPING=1` to `NOTIFY_SOCKET` with `Type=notify`, see sd_notify(3), through the
//! `sd-notify` crate).
//!
//! I/O: reads and unsets `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`, sets
//! close-on-exec on the descriptors passed, sends datagrams to `NOTIFY_SOCKET` (none
//! when it is unset), and writes `tokenusage: systemd: ` lines on stderr.

use std::io;
use std::os::fd::RawFd;

use sd_notify::NotifyState;

use crate::transport::fastcgi::{self, Listener};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;

/// The variables of socket activation, unset once read so that no child inherits them.
const VARIABLES: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// How many sockets `LISTEN_FDS` passes to the process `pid`, from the values of
/// `LISTEN_PID` and `LISTEN_FDS`: `Ok(0)` when none is passed, or they are for another
/// process (a parent's variables inherited); `Err` with a note to log when they make no
/// sense.
pub fn passed_sockets(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    pid: u32,
) -> Result<usize, String> {
    let Some(fds) = listen_fds else {
        return Ok(0);
    };
    let Some(listen_pid) = listen_pid else {
        return Err("LISTEN_FDS is set without LISTEN_PID: ignored".into());
    };
    let Ok(listen_pid) = listen_pid.trim().parse::<u32>() else {
        return Err(format!("LISTEN_PID={listen_pid:?} is not a pid: ignored"));
    };
    if listen_pid != pid {
        return Ok(0);
    }
    fds.trim()
        .parse::<usize>()
        .ok()
        .filter(|count| *count <= 4096)
        .ok_or_else(|| format!("LISTEN_FDS={fds:?} is not a count of sockets: ignored"))
}

/// Takes the sockets systemd passed this process: returns how many (0 when none, its
/// notes logged), and unsets the variables of socket activation either way. The
/// descriptors passed are made close-on-exec.
///
/// # Safety
/// No other thread may run: it unsets environment variables ([`std::env::remove_var`]).
pub unsafe fn take_passed_sockets() -> usize {
    let listen_pid = std::env::var("LISTEN_PID").ok();
    let listen_fds = std::env::var("LISTEN_FDS").ok();
    for name in VARIABLES {
        // SAFETY: the caller promises that no other thread runs.
        unsafe { std::env::remove_var(name) };
    }
    match passed_sockets(
        listen_pid.as_deref(),
        listen_fds.as_deref(),
        std::process::id(),
    ) {
        Ok(count) => {
            for fd in (FIRST_FD..).take(count) {
                // SAFETY: fcntl on a descriptor number; an fd that is not open fails.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            if count > 1 {
                eprintln!(
                    "tokenusage: systemd: {count} sockets passed (LISTEN_FDS): serving on \
                     fd {FIRST_FD}, the other {} ignored",
                    count - 1
                );
            }
            count
        }
        Err(note) => {
            eprintln!("tokenusage: systemd: {note}");
            0
        }
    }
}

/// The listening socket systemd passed as fd 3, once [`take_passed_sockets`] counted at
/// least one; refused when fd 3 is not a listening unix or TCP socket. Only the first
/// call can return it: the listener owns the descriptor.
pub fn listener() -> io::Result<Listener> {
    fastcgi::listener_from_fd3().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {FIRST_FD} (LISTEN_FDS) is not a listening unix or TCP socket, or was \
                 taken already"
            ),
        )
    })
}

/// Tells systemd (`Type=notify`) that the socket is served and the workers are up.
pub fn notify_ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving FastCGI")]);
}

/// Tells systemd that the drain after SIGTERM began: no new requests are taken.
pub fn notify_stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("finishing the requests in flight"),
    ]);
}

/// A no-op without `NOTIFY_SOCKET`; a failure is logged, never fatal.
fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        eprintln!("tokenusage: systemd: cannot notify NOTIFY_SOCKET: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_listen_fds_no_socket_is_passed() {
        assert_eq!(passed_sockets(None, None, 42), Ok(0));
        assert_eq!(passed_sockets(Some("42"), None, 42), Ok(0));
    }

    #[test]
    fn sockets_passed_to_this_process_are_counted() {
        assert_eq!(passed_sockets(Some("42"), Some("1"), 42), Ok(1));
        assert_eq!(passed_sockets(Some("42"), Some("3"), 42), Ok(3));
        assert_eq!(passed_sockets(Some("42"), Some("0"), 42), Ok(0));
    }

    #[test]
    fn sockets_passed_to_another_process_are_not_ours() {
        assert_eq!(passed_sockets(Some("41"), Some("1"), 42), Ok(0));
    }

    #[test]
    fn variables_that_make_no_sense_are_noted_and_ignored() {
        let note = passed_sockets(None, Some("1"), 42).unwrap_err();
        assert!(note.contains("without LISTEN_PID"), "{note}");
        let note = passed_sockets(Some("self"), Some("1"), 42).unwrap_err();
        assert!(note.contains("LISTEN_PID=\"self\""), "{note}");
        for fds in ["", "one", "-1", "100000"] {
            let note = passed_sockets(Some("42"), Some(fds), 42).unwrap_err();
            assert!(note.contains("LISTEN_FDS="), "{note}");
        }
    }
}
