//! The few DTLS timer calls the safe `openssl` crate does not wrap.

use std::ffi::{c_int, c_long, c_uint, c_void};
use std::time::Duration;

use openssl::ssl::SslRef;

// From <openssl/ssl.h>; DTLSv1_get_timeout / DTLSv1_handle_timeout are macros over SSL_ctrl.
const DTLS_CTRL_GET_TIMEOUT: c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: c_int = 74;

/// First retransmission timeout. RFC 6347 suggests 1 s; ICE has already
/// proven the path, so a lost flight is retried sooner, as mediasoup does.
const INITIAL_TIMEOUT_US: c_uint = 200_000;
/// Backoff cap; openssl still gives up after its 12th timeout.
const MAX_TIMEOUT_US: c_uint = 4_000_000;

type DtlsTimerCb = unsafe extern "C" fn(s: *mut openssl_sys::SSL, timer_us: c_uint) -> c_uint;

extern "C" {
    // libssl >= 1.1.1; not bound by openssl-sys.
    fn DTLS_set_timer_cb(s: *mut openssl_sys::SSL, cb: Option<DtlsTimerCb>);
}

/// `SslRef` is an opaque wrapper whose address is the `SSL *` itself; this is
/// what foreign-types' `as_ptr` does, without depending on that crate.
fn raw(ssl: &SslRef) -> *mut openssl_sys::SSL {
    ssl as *const SslRef as *mut openssl_sys::SSL
}

unsafe extern "C" fn timer_cb(_s: *mut openssl_sys::SSL, timer_us: c_uint) -> c_uint {
    if timer_us == 0 {
        INITIAL_TIMEOUT_US
    } else {
        timer_us.saturating_mul(2).min(MAX_TIMEOUT_US)
    }
}

pub(crate) fn install_timer_cb(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a live SSL object; the callback is a plain function
    // that touches no state.
    unsafe { DTLS_set_timer_cb(raw(ssl), Some(timer_cb)) }
}

/// Time left on openssl's retransmission timer (measured on its own clock),
/// or None when no timer runs.
pub(crate) fn get_timeout(ssl: &SslRef) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: DTLS_CTRL_GET_TIMEOUT writes one `struct timeval` through parg
    // and does not otherwise mutate the SSL object.
    let running = unsafe {
        openssl_sys::SSL_ctrl(
            raw(ssl),
            DTLS_CTRL_GET_TIMEOUT,
            0,
            &mut tv as *mut libc::timeval as *mut c_void,
        )
    };
    if running != 1 {
        return None;
    }
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutOutcome {
    NotDue,
    Retransmitted,
    /// openssl gave up (too many timeouts) or failed to retransmit.
    Failed,
}

/// Takes `&SslRef` because `SslStream` lends no `&mut`; `SslRef` is an
/// interior-mutable opaque handle, as for every other openssl call.
pub(crate) fn handle_timeout(ssl: &SslRef) -> TimeoutOutcome {
    // SAFETY: DTLS_CTRL_HANDLE_TIMEOUT takes no argument; retransmissions go
    // through the SSL's own BIO, which no Rust borrow holds during this call.
    let r: c_long = unsafe {
        openssl_sys::SSL_ctrl(raw(ssl), DTLS_CTRL_HANDLE_TIMEOUT, 0, std::ptr::null_mut())
    };
    match r {
        0 => TimeoutOutcome::NotDue,
        r if r > 0 => TimeoutOutcome::Retransmitted,
        _ => TimeoutOutcome::Failed,
    }
}
