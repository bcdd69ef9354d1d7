//! RFC 7983 demultiplexing on the first byte, plus RFC 5761 RTP/RTCP split.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketClass {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Unknown,
}

#[inline]
pub fn classify(buf: &[u8]) -> PacketClass {
    match buf.first() {
        Some(0..=3) => PacketClass::Stun,
        Some(20..=63) => PacketClass::Dtls,
        Some(128..=191) => match buf.get(1) {
            Some(pt) if (192..=223).contains(pt) => PacketClass::Rtcp,
            Some(_) => PacketClass::Rtp,
            None => PacketClass::Unknown,
        },
        _ => PacketClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(classify(&[0, 1]), PacketClass::Stun);
        assert_eq!(classify(&[22, 0xfe]), PacketClass::Dtls);
        assert_eq!(classify(&[0x80, 96]), PacketClass::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 96]), PacketClass::Rtp);
        assert_eq!(classify(&[0x80, 200]), PacketClass::Rtcp);
        assert_eq!(classify(&[0x81, 206]), PacketClass::Rtcp);
        assert_eq!(classify(&[0x80]), PacketClass::Unknown);
        assert_eq!(classify(&[]), PacketClass::Unknown);
        assert_eq!(classify(&[64, 0]), PacketClass::Unknown);
    }
}
