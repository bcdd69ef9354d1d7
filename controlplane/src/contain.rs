//! Panic containment for the controlplane's long-lived tasks (dataplane
//! events, hub timers). One task serves every session, so a bug hit by one
//! session's input must cost that session, not DTLS, claims and consent
//! for everyone: the step is abandoned, logged and counted, the session it
//! concerned is ended, and the task goes on. (Shards contain their own
//! panics; see `dataplane::shard`.)

use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::error;

/// Runs one step of `task`; false when it panicked (logged and counted).
pub fn step(task: &'static str, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            error!(task, panic = %what, "panic contained in a controlplane task; it goes on");
            crate::metrics::record_controlplane_panic(task);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_step_is_contained_and_the_next_runs() {
        let mut ran = 0;
        assert!(!step("test", || panic!("boom")));
        assert!(step("test", || ran += 1));
        assert_eq!(ran, 1);
    }
}
