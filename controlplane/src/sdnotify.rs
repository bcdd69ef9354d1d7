//! systemd readiness, reload, stop and watchdog notifications (sd_notify).
//!
//! The protocol is one datagram of `KEY=value` lines to the unix socket
//! named by `$NOTIFY_SOCKET`; a name starting with `@` is in the abstract
//! namespace. It is small enough that a crate (and libsystemd) would cost
//! more than it saves. Outside systemd the variable is unset and every call
//! is a cheap no-op returning `Ok(false)`, so callers never need to know
//! how they were started.
//!
//! The unit uses `Type=notify` with `ExecReload=kill -HUP`, because Debian
//! 12 ships systemd 252 and `Type=notify-reload` needs 253. Sending
//! `RELOADING=1` with `MONOTONIC_USEC` around a reload is still right on
//! both: 253+ shows the unit as reloading until the next `READY=1`, and
//! older versions accept the message. Moving to `Type=notify-reload` later
//! only changes the unit.
//!
//! systemd checks with `NotifyAccess=main` that the sender is the main
//! process; any thread of it qualifies, since the kernel reports the
//! thread group id.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

/// Environment variable naming the notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Watchdog interval in microseconds, set when the unit has `WatchdogSec=`.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// The pid the watchdog is meant for; absent means "whoever reads it".
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is not an absolute path or an @abstract name")]
    BadSocketName(String),
    #[error("sd_notify to {socket}: {source}")]
    Io {
        socket: String,
        #[source]
        source: io::Error,
    },
}

/// A resolved notification socket.
#[derive(Debug)]
pub struct Notifier {
    addr: SocketAddr,
    name: String,
}

impl Notifier {
    /// The socket named by `$NOTIFY_SOCKET`, or `None` when not started by
    /// systemd with `Type=notify` (or the name is unusable).
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os(NOTIFY_SOCKET_ENV)?;
        match Notifier::for_socket(&name) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("{e}; systemd notifications disabled");
                None
            }
        }
    }

    /// A notifier for a socket name in `$NOTIFY_SOCKET` syntax: an absolute
    /// path, or `@name` for the abstract namespace.
    pub fn for_socket(name: &OsStr) -> Result<Notifier, NotifyError> {
        let bytes = name.as_bytes();
        let shown = name.to_string_lossy().into_owned();
        let bad = || NotifyError::BadSocketName(shown.clone());
        let addr = match bytes.first() {
            Some(b'@') => abstract_addr(bytes.get(1..).unwrap_or_default()).map_err(|_| bad())?,
            Some(b'/') => {
                SocketAddr::from_pathname(std::path::Path::new(name)).map_err(|_| bad())?
            }
            _ => return Err(bad()),
        };
        Ok(Notifier { addr, name: shown })
    }

    /// Sends one notification: `KEY=value` lines separated by `\n`.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        let io_err = |source| NotifyError::Io {
            socket: self.name.clone(),
            source,
        };
        // A fresh unbound socket per message: notifications are rare (the
        // watchdog's is every few seconds), and nothing is kept open that a
        // fork or a reload would have to care about.
        let sock = UnixDatagram::unbound().map_err(io_err)?;
        sock.send_to_addr(state.as_bytes(), &self.addr)
            .map_err(io_err)?;
        Ok(())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Sends `state` to `$NOTIFY_SOCKET`. `Ok(false)`: not under systemd.
pub fn notify(state: &str) -> Result<bool, NotifyError> {
    // The environment is read once, so a bad name is reported once rather
    // than on every watchdog tick.
    static FROM_ENV: OnceLock<Option<Notifier>> = OnceLock::new();
    match FROM_ENV.get_or_init(Notifier::from_env) {
        Some(n) => n.send(state).map(|()| true),
        None => Ok(false),
    }
}

/// Start-up is complete: every socket is bound and both planes run.
/// Also ends a reload started with `notify_reloading`.
pub fn notify_ready() -> Result<bool, NotifyError> {
    notify("READY=1")
}

/// Shutdown (the drain) has begun.
pub fn notify_stopping() -> Result<bool, NotifyError> {
    notify("STOPPING=1")
}

/// Asks systemd to wait `extra` longer for the current start or stop: a
/// drain longer than `TimeoutStopSec=` can say so instead of being killed.
pub fn notify_extend_timeout(extra: Duration) -> Result<bool, NotifyError> {
    notify(&format!("EXTEND_TIMEOUT_USEC={}", extra.as_micros()))
}

/// A reload (SIGHUP) has begun; send `notify_ready` when it is done.
pub fn notify_reloading() -> Result<bool, NotifyError> {
    notify(&reloading_message(monotonic_usec()))
}

/// The liveness check passed; systemd restarts the unit if this does not
/// arrive within `WatchdogSec=`.
pub fn notify_watchdog() -> Result<bool, NotifyError> {
    notify("WATCHDOG=1")
}

/// Free-form status shown by `systemctl status`.
pub fn notify_status(status: &str) -> Result<bool, NotifyError> {
    notify(&status_message(status))
}

/// How often to send `WATCHDOG=1` is up to the caller: systemd's advice is
/// half of this interval. `None` when the watchdog is off or meant for
/// another process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var(WATCHDOG_USEC_ENV).ok();
    let pid = std::env::var(WATCHDOG_PID_ENV).ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// `WATCHDOG_USEC` and `WATCHDOG_PID` as `sd_watchdog_enabled` reads them:
/// a positive interval, for this pid if a pid is given.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != my_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// One STATUS line: a newline would start a new assignment, so it is
/// folded to a space.
fn status_message(status: &str) -> String {
    let clean: String = status
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STATUS={clean}")
}

fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares
/// `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_path() -> std::path::PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        std::env::temp_dir().join(format!(
            "sfud-sdnotify-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let path = temp_path();
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::for_socket(path.as_os_str()).unwrap();
        n.send("READY=1").unwrap();
        assert_eq!(recv(&server), "READY=1");
        n.send(&status_message("draining\n3 sessions")).unwrap();
        assert_eq!(recv(&server), "STATUS=draining 3 sessions");
        n.send(&reloading_message(42)).unwrap();
        assert_eq!(recv(&server), "RELOADING=1\nMONOTONIC_USEC=42");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sfud-sdnotify-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::for_socket(OsStr::new(&format!("@{name}"))).unwrap();
        n.send("WATCHDOG=1").unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "relative/sock", "sock"] {
            assert!(matches!(
                Notifier::for_socket(OsStr::new(bad)),
                Err(NotifyError::BadSocketName(_))
            ));
        }
        // A path longer than sun_path cannot be addressed.
        let long = format!("/{}", "x".repeat(200));
        assert!(Notifier::for_socket(OsStr::new(&long)).is_err());
    }

    #[test]
    fn missing_listener_is_an_io_error() {
        let n = Notifier::for_socket(temp_path().as_os_str()).unwrap();
        assert!(matches!(n.send("READY=1"), Err(NotifyError::Io { .. })));
    }

    #[test]
    fn watchdog_env_parsing() {
        let me = 1234;
        assert_eq!(
            parse_watchdog(Some("20000000"), None, me),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            parse_watchdog(Some("500000"), Some("1234"), me),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_watchdog(Some("500000"), Some("999"), me), None);
        assert_eq!(parse_watchdog(Some("0"), None, me), None);
        assert_eq!(parse_watchdog(Some("x"), None, me), None);
        assert_eq!(parse_watchdog(Some("500000"), Some("x"), me), None);
        assert_eq!(parse_watchdog(None, Some("1234"), me), None);
    }

    #[test]
    fn monotonic_clock_moves() {
        let a = monotonic_usec();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_usec() > a);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn socket_names_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
                let _ = Notifier::for_socket(OsStr::from_bytes(&bytes));
            }

            #[test]
            fn watchdog_parse_never_panics(usec in ".{0,24}", pid in proptest::option::of(".{0,12}")) {
                let _ = parse_watchdog(Some(&usec), pid.as_deref(), 1);
            }

            #[test]
            fn status_is_one_line(s in ".{0,80}") {
                let m = status_message(&s);
                prop_assert!(!m.contains('\n'));
                prop_assert!(m.starts_with("STATUS="));
            }
        }
    }
}
