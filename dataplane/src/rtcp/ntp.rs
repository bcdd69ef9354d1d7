//! NTP timestamps as RTCP carries them (RFC 3550 §4).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (32.32 fixed point). Seconds wrap at the era
/// boundary as on the wire; times before 1970 map to the epoch.
pub fn ntp_from_system_time(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp: the LSR field of a report block.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_epoch_and_half_second() {
        let t = UNIX_EPOCH + Duration::from_millis(1500);
        let ntp = ntp_from_system_time(t);
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp as u32, 0x8000_0000);
        assert_eq!(
            ntp_middle32(ntp),
            (((NTP_UNIX_OFFSET + 1) as u32 & 0xffff) << 16) | 0x8000
        );
    }

    #[test]
    fn before_epoch_is_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(ntp_from_system_time(t), NTP_UNIX_OFFSET << 32);
    }

    #[test]
    fn middle32() {
        assert_eq!(ntp_middle32(0x1122_3344_5566_7788), 0x3344_5566);
    }
}
