//! The 14-bit message type interleaves a 12-bit method with 2 class bits
//! (RFC 8489 §5): M11..M7 C1 M6..M4 C0 M3..M0.

/// Message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
}

/// Callers must ensure `method <= 0xFFF`.
pub(crate) fn encode(class: Class, method: u16) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

pub(crate) fn decode(typ: u16) -> (Class, u16) {
    let method = (typ & 0x000F) | ((typ >> 1) & 0x0070) | ((typ >> 2) & 0x0F80);
    let class = match ((typ >> 4) & 0b01) | ((typ >> 7) & 0b10) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::Success,
        _ => Class::Error,
    };
    (class, method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types() {
        assert_eq!(encode(Class::Request, 0x001), 0x0001);
        assert_eq!(encode(Class::Success, 0x001), 0x0101);
        assert_eq!(encode(Class::Error, 0x001), 0x0111);
        assert_eq!(encode(Class::Indication, 0x007), 0x0017);
        assert_eq!(encode(Class::Error, 0x003), 0x0113);
    }

    #[test]
    fn roundtrip_all() {
        for m in 0..=0xFFFu16 {
            for c in [Class::Request, Class::Indication, Class::Success, Class::Error] {
                let t = encode(c, m);
                assert_eq!(t & 0xC000, 0);
                assert_eq!(decode(t), (c, m));
            }
        }
    }
}
