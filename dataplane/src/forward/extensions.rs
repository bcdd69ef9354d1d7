//! Header extensions on the way through an SFU. Ids are per peer (each
//! side negotiates its own), so an uptrack keeps the elements worth
//! forwarding by *kind*, and each downtrack writes them back under its
//! subscriber's ids, next to the ones sfud writes itself (mid,
//! abs-send-time, transport-wide sequence number). Anything else the
//! publisher sent is dropped: the subscriber never negotiated it.

use std::time::Duration;

use crate::msg::ExtIds;
use crate::rtp::RtpHeader;

/// Bytes of carried elements kept per packet (kind, length, data each):
/// room for a dependency descriptor with its template structure (about 90
/// bytes from Chromium for L3T3, at most 255) next to the small ones.
/// Elements that would not fit are dropped.
pub const MAX_CARRIED: usize = 256;

/// The extensions sfud forwards unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Carried {
    AudioLevel = 1,
    VideoOrientation = 2,
    PlayoutDelay = 3,
    DependencyDescriptor = 4,
    VideoContentType = 5,
}

impl Carried {
    const ALL: [Carried; 5] = [
        Carried::AudioLevel,
        Carried::VideoOrientation,
        Carried::PlayoutDelay,
        Carried::DependencyDescriptor,
        Carried::VideoContentType,
    ];

    fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u8 == v)
    }

    fn id_in(self, ids: &ExtIds) -> Option<u8> {
        match self {
            Carried::AudioLevel => ids.audio_level,
            Carried::VideoOrientation => ids.video_orientation,
            Carried::PlayoutDelay => ids.playout_delay,
            Carried::DependencyDescriptor => ids.dependency_descriptor,
            Carried::VideoContentType => ids.video_content_type,
        }
    }
}

/// Copies the elements worth forwarding from a publisher's packet into
/// `out` as `[kind, len, data..]` records. Returns the bytes used.
pub fn carry(pkt: &[u8], hdr: &RtpHeader, ids: &ExtIds, out: &mut [u8; MAX_CARRIED]) -> usize {
    if hdr.ext.is_none() {
        return 0;
    }
    let mut n = 0;
    let mut seen = 0u8;
    for (id, data) in hdr.extensions(pkt) {
        let Some(kind) = Carried::ALL.into_iter().find(|k| k.id_in(ids) == Some(id)) else { continue };
        // One element per kind, the first: a packet repeating an id would
        // otherwise reach subscribers with the same id twice (found by the
        // rtp fuzz target).
        if data.is_empty() || data.len() > usize::from(u8::MAX) || seen & (1 << kind as u8) != 0 {
            continue;
        }
        seen |= 1 << kind as u8;
        let end = n + 2 + data.len();
        let Some(dst) = out.get_mut(n..end) else { break };
        dst[0] = kind as u8;
        dst[1] = data.len() as u8;
        dst[2..].copy_from_slice(data);
        n = end;
    }
    n
}

/// The records `carry` wrote; stops quietly at anything malformed (the
/// bytes crossed a shard boundary, but were written by `carry`).
pub fn carried(buf: &[u8]) -> impl Iterator<Item = (Carried, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let kind = Carried::from_u8(*buf.get(pos)?)?;
        let len = usize::from(*buf.get(pos + 1)?);
        let data = buf.get(pos + 2..pos + 2 + len)?;
        pos += 2 + len;
        Some((kind, data))
    })
}

/// abs-send-time: 6.18 fixed-point seconds, 24 bits. Receivers only use
/// differences, so any fixed origin will do.
pub fn abs_send_time(since_origin: Duration) -> [u8; 3] {
    let v = ((since_origin.as_nanos() << 18) / 1_000_000_000) as u32 & 0x00ff_ffff;
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// Most elements a downtrack packet carries: mid, abs-send-time,
/// transport-cc and the five carried kinds.
pub const MAX_ELEMENTS: usize = 8;

/// Whether the carried elements mark a screen share (video-content-type:
/// bit 0 of its one byte; the other bits are unused). None when the packet
/// carried no content type: Chromium writes it on some packets only.
pub fn screen_share(carried_buf: &[u8]) -> Option<bool> {
    carried(carried_buf).find(|(k, _)| *k == Carried::VideoContentType).and_then(|(_, d)| d.first()).map(|b| b & 1 == 1)
}

/// What sfud writes itself on one downtrack packet.
pub struct Stamp<'a> {
    pub mid: &'a [u8],
    pub abs_send_time: &'a [u8; 3],
    pub transport_seq: &'a [u8; 2],
}

/// The `(id, data)` elements for a subscriber that negotiated `ids`, in
/// `out`; returns how many. Elements too long for the one-byte form go only
/// to a subscriber that negotiated `extmap-allow-mixed`: the others would
/// see the stream switch forms, which RFC 8285 §6 leaves to that attribute.
pub fn elements<'a>(
    ids: &ExtIds,
    stamp: &Stamp<'a>,
    carried_buf: &'a [u8],
    out: &mut [(u8, &'a [u8]); MAX_ELEMENTS],
) -> usize {
    let mut n = 0;
    let max_len = if ids.allow_mixed { usize::from(u8::MAX) } else { 16 };
    let mut push = |id: Option<u8>, data: &'a [u8]| {
        if let Some(id) = id.filter(|id| (1..=14).contains(id)) {
            if !data.is_empty() && data.len() <= max_len && n < MAX_ELEMENTS {
                out[n] = (id, data);
                n += 1;
            }
        }
    };
    push(ids.mid, stamp.mid);
    push(ids.abs_send_time, stamp.abs_send_time);
    push(ids.transport_cc, stamp.transport_seq);
    for (kind, data) in carried(carried_buf) {
        push(kind.id_in(ids), data);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{self, HeaderFields};

    fn publisher_ids() -> ExtIds {
        ExtIds { mid: Some(4), audio_level: Some(1), transport_cc: Some(3), video_orientation: Some(13), ..Default::default() }
    }

    fn packet(exts: &[(u8, &[u8])]) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let f = HeaderFields { marker: false, payload_type: 111, sequence: 1, timestamp: 2, ssrc: 3 };
        let n = rtp::write_header_with_extensions(&mut buf, &f, exts).unwrap();
        buf.truncate(n);
        buf.extend_from_slice(b"payload");
        buf
    }

    #[test]
    fn carries_only_forwardable_kinds_by_kind() {
        let p = packet(&[(4, b"0"), (1, &[0x85]), (3, &[0, 7]), (13, &[1]), (9, &[1, 2])]);
        let h = rtp::parse(&p).unwrap();
        let mut buf = [0u8; MAX_CARRIED];
        let n = carry(&p, &h, &publisher_ids(), &mut buf);
        let got: Vec<_> = carried(&buf[..n]).collect();
        assert_eq!(got, vec![(Carried::AudioLevel, &[0x85][..]), (Carried::VideoOrientation, &[1][..])]);
    }

    /// Regression (fuzz/artifacts/rtp, docs/fuzzing.md): a publisher packet
    /// with the audio-level id twice was forwarded with it twice.
    #[test]
    fn a_repeated_id_is_carried_once() {
        let p = packet(&[(1, &[0x85]), (1, &[1, 2, 3])]);
        let h = rtp::parse(&p).unwrap();
        let mut buf = [0u8; MAX_CARRIED];
        let n = carry(&p, &h, &publisher_ids(), &mut buf);
        let got: Vec<_> = carried(&buf[..n]).collect();
        assert_eq!(got, vec![(Carried::AudioLevel, &[0x85][..])]);
    }

    #[test]
    fn written_under_the_subscribers_ids() {
        let p = packet(&[(1, &[0x85]), (13, &[1])]);
        let h = rtp::parse(&p).unwrap();
        let mut buf = [0u8; MAX_CARRIED];
        let n = carry(&p, &h, &publisher_ids(), &mut buf);
        // The subscriber uses other ids and did not negotiate orientation.
        let sub = ExtIds { mid: Some(9), audio_level: Some(10), transport_cc: Some(5), ..Default::default() };
        let stamp = Stamp { mid: b"a1", abs_send_time: &[1, 2, 3], transport_seq: &[0, 42] };
        let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
        let k = elements(&sub, &stamp, &buf[..n], &mut els);
        assert_eq!(&els[..k], &[(9, &b"a1"[..]), (5, &[0, 42][..]), (10, &[0x85][..])]);
    }

    /// A dependency descriptor with its structure (Chromium's is about 90
    /// bytes) is carried whole, and written in the two-byte form to a
    /// subscriber that allows mixed forms; the others go without it.
    #[test]
    fn a_long_descriptor_goes_to_subscribers_that_allow_mixed() {
        let dd = [0x5au8; 90];
        let ids = ExtIds { dependency_descriptor: Some(12), ..publisher_ids() };
        let mut buf = vec![0u8; 200];
        let f = HeaderFields { marker: false, payload_type: 45, sequence: 1, timestamp: 2, ssrc: 3 };
        let n = rtp::write_header_with_extensions(&mut buf, &f, &[(4, b"0"), (12, &dd)]).unwrap();
        buf.truncate(n);
        let h = rtp::parse(&buf).unwrap();
        let mut carried_buf = [0u8; MAX_CARRIED];
        let k = carry(&buf, &h, &ids, &mut carried_buf);
        assert_eq!(carried(&carried_buf[..k]).collect::<Vec<_>>(), vec![(Carried::DependencyDescriptor, &dd[..])]);
        let stamp = Stamp { mid: b"1", abs_send_time: &[1, 2, 3], transport_seq: &[0, 1] };
        let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
        let sub = ExtIds { mid: Some(1), dependency_descriptor: Some(7), ..Default::default() };
        let m = elements(&sub, &stamp, &carried_buf[..k], &mut els);
        assert_eq!(&els[..m], &[(1, &b"1"[..])], "one-byte only: the descriptor is left out");
        let sub = ExtIds { allow_mixed: true, ..sub };
        let m = elements(&sub, &stamp, &carried_buf[..k], &mut els);
        assert_eq!(&els[..m], &[(1, &b"1"[..]), (7, &dd[..])]);
        let mut out = [0u8; 200];
        let len = rtp::write_header_with_extensions(&mut out, &f, &els[..m]).unwrap();
        let h = rtp::parse(&out[..len]).unwrap();
        assert_eq!(h.extensions(&out[..len]).collect::<Vec<_>>(), vec![(1, &b"1"[..]), (7, &dd[..])]);
    }

    /// video-content-type as Chromium writes it for a screen capture (one
    /// byte, 0x01) is read as a screen share and passed on under the
    /// subscriber's id; a camera's 0x00 is not a screen share; a packet
    /// without it says nothing.
    #[test]
    fn content_type_marks_a_screen_share_and_passes_through() {
        let ids = ExtIds { video_content_type: Some(7), ..publisher_ids() };
        let read = |exts: &[(u8, &[u8])]| {
            let p = packet(exts);
            let h = rtp::parse(&p).unwrap();
            let mut buf = [0u8; MAX_CARRIED];
            let n = carry(&p, &h, &ids, &mut buf);
            (screen_share(&buf[..n]), buf[..n].to_vec())
        };
        assert_eq!(read(&[(4, b"1"), (7, &[0x01])]).0, Some(true));
        assert_eq!(read(&[(7, &[0x00])]).0, Some(false));
        assert_eq!(read(&[(4, b"1")]).0, None);
        let (_, carried_buf) = read(&[(7, &[0x01])]);
        let sub = ExtIds { mid: Some(1), video_content_type: Some(9), ..Default::default() };
        let stamp = Stamp { mid: b"v", abs_send_time: &[1, 2, 3], transport_seq: &[0, 1] };
        let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
        let m = elements(&sub, &stamp, &carried_buf, &mut els);
        assert_eq!(&els[..m], &[(1, &b"v"[..]), (9, &[0x01][..])]);
    }

    #[test]
    fn nothing_negotiated_nothing_written() {
        let stamp = Stamp { mid: b"0", abs_send_time: &[0; 3], transport_seq: &[0; 2] };
        let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
        assert_eq!(elements(&ExtIds::default(), &stamp, &[], &mut els), 0);
    }

    #[test]
    fn abs_send_time_is_6_18_fixed_point() {
        assert_eq!(abs_send_time(Duration::from_secs(1)), [0x04, 0x00, 0x00]);
        assert_eq!(abs_send_time(Duration::from_millis(500)), [0x02, 0x00, 0x00]);
        // Wraps every 64 s.
        assert_eq!(abs_send_time(Duration::from_secs(64)), [0, 0, 0]);
    }

    #[test]
    fn carried_stops_at_garbage() {
        assert_eq!(carried(&[1, 5, 0]).count(), 0, "truncated record");
        assert_eq!(carried(&[77, 1, 0]).count(), 0, "unknown kind");
        assert_eq!(carried(&[1, 1, 9, 0, 0]).count(), 1, "zero padding ends it");
    }

    proptest::proptest! {
        /// Whatever the publisher sent, what a subscriber gets parses back
        /// to the same carried elements (within the bound).
        #[test]
        fn carried_elements_survive_the_rewrite(lens in proptest::collection::vec(1usize..=255, 1..4), mixed in proptest::bool::ANY) {
            let ids = ExtIds { dependency_descriptor: Some(12), playout_delay: Some(6), ..publisher_ids() };
            let kinds = [12u8, 6, 13];
            let datas: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, l)| vec![i as u8 + 1; *l]).collect();
            let exts: Vec<(u8, &[u8])> = datas.iter().zip(kinds).map(|(d, k)| (k, &d[..])).collect();
            let mut buf = vec![0u8; 1200];
            let f = HeaderFields { marker: false, payload_type: 45, sequence: 1, timestamp: 2, ssrc: 3 };
            let n = rtp::write_header_with_extensions(&mut buf, &f, &exts).unwrap();
            let h = rtp::parse(&buf[..n]).unwrap();
            let mut carried_buf = [0u8; MAX_CARRIED];
            let k = carry(&buf[..n], &h, &ids, &mut carried_buf);
            proptest::prop_assert!(k <= MAX_CARRIED);
            let sub = ExtIds { dependency_descriptor: Some(2), playout_delay: Some(3), video_orientation: Some(4), allow_mixed: mixed, ..Default::default() };
            let stamp = Stamp { mid: b"1", abs_send_time: &[1, 2, 3], transport_seq: &[0, 1] };
            let mut els = [(0u8, &[][..]); MAX_ELEMENTS];
            let m = elements(&sub, &stamp, &carried_buf[..k], &mut els);
            let mut out = vec![0u8; 1500];
            let len = rtp::write_header_with_extensions(&mut out, &f, &els[..m]).unwrap();
            let got: Vec<(u8, Vec<u8>)> = rtp::parse(&out[..len]).unwrap().extensions(&out[..len]).map(|(i, d)| (i, d.to_vec())).collect();
            // Each element arrives whole or not at all; short ones always
            // when they fit the record.
            let mut used = 0;
            for (i, d) in datas.iter().enumerate() {
                used += 2 + d.len();
                let sub_id = [2u8, 3, 4][i];
                let expected = used <= MAX_CARRIED && (d.len() <= 16 || mixed);
                match got.iter().find(|(id, _)| *id == sub_id) {
                    Some((_, g)) => proptest::prop_assert!(expected && g == d),
                    None => proptest::prop_assert!(!expected),
                }
            }
        }

        #[test]
        fn carry_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(h) = rtp::parse(&bytes) {
                let mut buf = [0u8; MAX_CARRIED];
                let n = carry(&bytes, &h, &publisher_ids(), &mut buf);
                proptest::prop_assert!(n <= MAX_CARRIED);
                let _ = carried(&buf[..n]).count();
            }
            let _ = carried(&bytes).count();
        }
    }
}
