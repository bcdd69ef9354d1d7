//! Groups packets into send bursts and measures how the spacing of
//! consecutive bursts changed on the way: the delay variation the trendline
//! filters.

/// Packets sent within this of a group's first packet belong to it: a
/// video frame goes out as one burst, and its spacing on arrival says more
/// about the path than the spacing of its packets.
const BURST_US: i64 = 5_000;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    last_arrival_us: i64,
}

/// Spacing of two consecutive groups at the sender and at the receiver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GroupDelta {
    pub(super) send_ms: f64,
    pub(super) arrival_ms: f64,
    /// Arrival of the later group (receiver clock).
    pub(super) arrival_us: i64,
}

#[derive(Debug, Default)]
pub(super) struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
}

impl InterArrival {
    /// Feeds one received packet, in send order. When it starts a new group,
    /// returns the delta between the two groups before it.
    pub(super) fn on_packet(&mut self, send_us: i64, arrival_us: i64) -> Option<GroupDelta> {
        let new = Group {
            first_send_us: send_us,
            last_send_us: send_us,
            last_arrival_us: arrival_us,
        };
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(new);
            return None;
        };
        if send_us < cur.first_send_us {
            // Sent before the group we are filling: too late to place.
            return None;
        }
        if send_us - cur.first_send_us <= BURST_US {
            cur.last_send_us = cur.last_send_us.max(send_us);
            cur.last_arrival_us = cur.last_arrival_us.max(arrival_us);
            return None;
        }
        let done = *cur;
        self.current = Some(new);
        let delta = self.previous.map(|prev| GroupDelta {
            send_ms: (done.last_send_us - prev.last_send_us) as f64 / 1000.0,
            arrival_ms: (done.last_arrival_us - prev.last_arrival_us) as f64 / 1000.0,
            arrival_us: done.last_arrival_us,
        });
        self.previous = Some(done);
        delta
    }

    pub(super) fn reset(&mut self) {
        *self = InterArrival::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_form_groups() {
        let mut ia = InterArrival::default();
        // three frames of three packets, 33 ms apart; the path adds 2 ms per frame
        let mut out = Vec::new();
        for frame in 0..4i64 {
            for p in 0..3i64 {
                let send = frame * 33_000 + p * 100;
                let arrival = 50_000 + send + frame * 2000 + p * 400;
                out.extend(ia.on_packet(send, arrival));
            }
        }
        // groups complete when the next one starts: 3 groups done, 2 deltas
        assert_eq!(out.len(), 2);
        for d in out {
            assert!((d.send_ms - 33.0).abs() < 1e-9);
            assert!((d.arrival_ms - 35.0).abs() < 1e-9);
        }
        // a packet from before the current group is ignored
        assert_eq!(ia.on_packet(0, 0), None);
    }
}
