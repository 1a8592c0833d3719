//! Turns SIGTERM, SIGINT and SIGQUIT into a shutdown flag the servers poll; SIGHUP is
//! ignored (configs are re-read on change, so there is nothing to reload).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if let Some(flag) = FLAG.get() {
        flag.store(true, Ordering::SeqCst);
    }
}

/// Installs the handlers once and returns the flag they set.
pub fn shutdown_flag() -> Arc<AtomicBool> {
    let flag = FLAG
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that performs only an atomic store.
    unsafe {
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            libc::signal(signal, handler);
        }
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        // A client that goes away mid-response must not kill the process.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    flag
}
