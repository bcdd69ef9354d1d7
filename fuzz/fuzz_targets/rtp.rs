//! RTP as a shard reads a publisher's packet and rewrites it for a
//! subscriber: header, CSRCs, RFC 8285 extensions, RTX decapsulation
//! (RFC 4588), the extensions carried across shards, and the header written
//! back with a subscriber's ids, which must parse again to the same fields.
#![no_main]

use dataplane::forward::extensions::{self, Stamp, MAX_CARRIED, MAX_ELEMENTS};
use dataplane::forward::rtx;
use dataplane::msg::ExtIds;
use dataplane::rtp::{self, HeaderFields};
use libfuzzer_sys::fuzz_target;

/// Extension ids from two fuzz bytes, distinct within one peer as SDP
/// negotiation guarantees (0 and 15 are not valid one-byte ids).
fn ids(a: u8, b: u8) -> ExtIds {
    let used = std::cell::Cell::new(0u16);
    let id = |x: u8| {
        let id = x & 0x0f;
        let bit = 1u16 << id;
        (id != 0 && used.get() & bit == 0).then(|| {
            used.set(used.get() | bit);
            id
        })
    };
    ExtIds {
        mid: id(a),
        abs_send_time: id(a >> 4),
        transport_cc: id(b),
        audio_level: id(b >> 4),
        video_orientation: id(a ^ b),
        playout_delay: id(a.wrapping_add(b)),
        dependency_descriptor: id(b.rotate_left(2)),
        video_content_type: id(a.rotate_left(3)),
        rid: None,
        repaired_rid: None,
        allow_mixed: a & 1 == 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, pkt @ ..] = data else { return };
    let Ok(hdr) = rtp::parse(pkt) else { return };
    let payload = hdr.payload(pkt);
    assert!(payload.len() == hdr.payload_len && hdr.header_len <= pkt.len());
    for i in 0..usize::from(hdr.csrc_count) + 1 {
        let _ = hdr.csrc(pkt, i);
    }
    for (id, value) in hdr.extensions(pkt) {
        assert!(rtp::extension(pkt, &hdr, id).is_some());
        let _ = value.len();
    }
    if let Ok((osn, original)) = rtx::decapsulate(payload) {
        let mut again = vec![0u8; payload.len()];
        let n = rtx::encapsulate(&mut again, osn, original).expect("room for what came in");
        assert_eq!(&again[..n], payload);
    }

    let publisher = ids(*a, *b);
    let mut carried = [0u8; MAX_CARRIED];
    let used = extensions::carry(pkt, &hdr, &publisher, &mut carried);
    assert!(used <= MAX_CARRIED);
    let subscriber = ids(*c, *d);
    let stamp = Stamp { mid: b"1", abs_send_time: &[1, 2, 3], transport_seq: &[4, 5] };
    let mut elems = [(0u8, &[][..]); MAX_ELEMENTS];
    let n = extensions::elements(&subscriber, &stamp, &carried[..used], &mut elems);
    // The carried buffer also crosses shards as raw bytes: any content is safe.
    for (kind, value) in extensions::carried(pkt) {
        let _ = (kind, value.len());
    }
    let _ = extensions::screen_share(pkt);
    let _ = extensions::screen_share(&carried[..used]);
    let fields = HeaderFields {
        marker: hdr.marker,
        payload_type: hdr.payload_type,
        sequence: hdr.sequence,
        timestamp: hdr.timestamp,
        ssrc: hdr.ssrc,
    };
    let mut out = [0u8; 1500];
    let Ok(len) = rtp::write_header_with_extensions(&mut out, &fields, &elems[..n]) else { return };
    let again = rtp::parse(&out[..len]).expect("what we write parses");
    assert_eq!((again.sequence, again.ssrc, again.payload_type), (hdr.sequence, hdr.ssrc, hdr.payload_type));
    for &(id, value) in &elems[..n] {
        assert_eq!(rtp::extension(&out[..len], &again, id), Some(value), "element {id} round trips");
    }
});
