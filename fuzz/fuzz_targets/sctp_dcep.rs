//! Data channels: SCTP packets (RFC 4960, via sctp-proto) into sfud's
//! endpoint, with the CRC32c fixed up by the harness so the fuzzer reaches
//! chunk parsing and the association state machine, and DCEP (RFC 8832)
//! messages, which must write back to what they were parsed as.
#![no_main]

use std::time::{Duration, Instant};

use controlplane::datachannel::{DataChannels, DcepMessage};
use libfuzzer_sys::fuzz_target;

/// CRC-32C (Castagnoli, reflected), as SCTP's checksum (RFC 4960 appendix B).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    if let Ok(DcepMessage::Open(open)) = DcepMessage::parse(data) {
        let mut out = Vec::new();
        open.write(&mut out).expect("a parsed OPEN can be written");
        // Not byte-equal: a reliable channel's reliability parameter is
        // ignored on receipt and written as 0 (RFC 8832 §5.1).
        assert!(matches!(DcepMessage::parse(&out), Ok(DcepMessage::Open(o)) if o == open), "DCEP OPEN round trip");
    }

    let start = Instant::now();
    let mut now = start;
    let mut dc = DataChannels::new(now);
    let ch = dc.open("fuzz");
    let mut input = data;
    while let [op, len, tail @ ..] = input {
        let len = usize::from(*len).min(tail.len());
        let (arg, next) = tail.split_at(len);
        input = next;
        match op % 4 {
            0 | 1 => {
                let mut pkt = arg.to_vec();
                if op % 4 == 0 && pkt.len() >= 12 {
                    pkt[8..12].fill(0);
                    let sum = crc32c(&pkt);
                    pkt[8..12].copy_from_slice(&sum.to_le_bytes());
                }
                dc.handle_sctp(&pkt, now);
            }
            2 => {
                now += Duration::from_millis(u64::from(arg.first().copied().unwrap_or(0)) * 50);
                dc.handle_timeout(now);
            }
            _ => {
                let _ = dc.send_binary(ch, arg);
            }
        }
        let mut sent = 0;
        while let Some(p) = dc.poll_transmit() {
            sent += 1;
            assert!(sent < 10_000, "transmits are bounded");
            assert!(p.len() <= 65_536);
        }
        let mut events = 0;
        while dc.poll_event().is_some() {
            events += 1;
            assert!(events < 10_000, "events are bounded");
        }
        if let Some(t) = dc.poll_timeout() {
            let _ = t.saturating_duration_since(start);
        }
    }
});
