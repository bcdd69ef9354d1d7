//! Keyframe detection from RTP payloads, so uptracks know when a
//! subscriber can start decoding (and when a PLI has been answered).

/// True when the payload starts a VP8 keyframe (RFC 7741).
///
/// The payload descriptor must mark the start of partition 0 (S=1, PID=0) and
/// the first byte of the VP8 frame header must have the inter-frame bit P=0.
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start_of_partition = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !start_of_partition || pid != 0 {
        return false;
    }
    let mut pos = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(pos) else {
            return false;
        };
        pos += 1;
        let (i, l, t, k) = (x & 0x80 != 0, x & 0x40 != 0, x & 0x20 != 0, x & 0x10 != 0);
        if i {
            let Some(&m) = payload.get(pos) else {
                return false;
            };
            // M bit: 15-bit PictureID takes a second byte.
            pos += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if l {
            pos += 1;
        }
        if t || k {
            pos += 1;
        }
    }
    matches!(payload.get(pos), Some(&h) if h & 0x01 == 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// True when the payload carries (the start of) an H.264 IDR picture or an
/// SPS (RFC 6184): a single NAL unit of either type, a STAP-A aggregating
/// one, or the first FU-A fragment of an IDR.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    match b0 & 0x1f {
        H264_IDR | H264_SPS => true,
        H264_STAP_A => stap_a_has_keyframe(payload.get(1..).unwrap_or(&[])),
        H264_FU_A => matches!(payload.get(1), Some(&fu) if fu & 0x80 != 0 && fu & 0x1f == H264_IDR),
        _ => false,
    }
}

fn stap_a_has_keyframe(mut units: &[u8]) -> bool {
    while let Some(size) = units.get(..2) {
        let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
        let Some(nal) = units.get(2..2 + size) else {
            return false;
        };
        if let Some(&h) = nal.first() {
            if matches!(h & 0x1f, H264_IDR | H264_SPS) {
                return true;
            }
        }
        units = &units[2 + size..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    // VP8 keyframe frame header: P=0 (bit 0 of byte 0), then start code 9d 01 2a.
    const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    const VP8_DELTA: [u8; 3] = [0x31, 0x02, 0x00];

    fn with_desc(desc: &[u8], frame: &[u8]) -> Vec<u8> {
        let mut v = desc.to_vec();
        v.extend_from_slice(frame);
        v
    }

    #[test]
    fn vp8_minimal_descriptor() {
        assert!(vp8_is_keyframe(&with_desc(&[0x10], &VP8_KEY)));
        assert!(!vp8_is_keyframe(&with_desc(&[0x10], &VP8_DELTA)));
        // not start of partition
        assert!(!vp8_is_keyframe(&with_desc(&[0x00], &VP8_KEY)));
        // start of partition 1, not 0
        assert!(!vp8_is_keyframe(&with_desc(&[0x11], &VP8_KEY)));
    }

    #[test]
    fn vp8_extended_descriptor() {
        // X=1; I=1 with 15-bit PictureID (M=1), L=1, T=1 => 1 + 1 + 2 + 1 + 1 = 6 bytes
        let desc = [0x90, 0xe0, 0x81, 0x23, 0x05, 0x40];
        assert!(vp8_is_keyframe(&with_desc(&desc, &VP8_KEY)));
        assert!(!vp8_is_keyframe(&with_desc(&desc, &VP8_DELTA)));
        // X=1; I=1 with 7-bit PictureID, K=1 only
        let desc = [0x90, 0x90, 0x17, 0x03];
        assert!(vp8_is_keyframe(&with_desc(&desc, &VP8_KEY)));
        // X=1, no optional fields
        assert!(vp8_is_keyframe(&with_desc(&[0x90, 0x00], &VP8_KEY)));
    }

    #[test]
    fn vp8_truncated() {
        assert!(!vp8_is_keyframe(&[]));
        assert!(!vp8_is_keyframe(&[0x10]));
        assert!(!vp8_is_keyframe(&[0x90]));
        assert!(!vp8_is_keyframe(&[0x90, 0x80]));
        assert!(!vp8_is_keyframe(&[0x90, 0x80, 0x81, 0x00]));
    }

    #[test]
    fn h264_single_nal() {
        assert!(h264_is_keyframe(&[0x65, 0x88, 0x80])); // IDR, nri=3
        assert!(h264_is_keyframe(&[0x67, 0x42, 0x00, 0x1f])); // SPS
        assert!(!h264_is_keyframe(&[0x68, 0xce])); // PPS
        assert!(!h264_is_keyframe(&[0x41, 0x9a])); // non-IDR slice
        assert!(!h264_is_keyframe(&[]));
    }

    #[test]
    fn h264_stap_a() {
        // STAP-A: [SPS (4 bytes)] [PPS (2 bytes)] [IDR (2 bytes)]
        let stap = [
            0x78, 0, 4, 0x67, 0x42, 0, 0x1f, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88,
        ];
        assert!(h264_is_keyframe(&stap));
        // only a PPS and a non-IDR slice
        let stap = [0x78, 0, 2, 0x68, 0xce, 0, 2, 0x41, 0x9a];
        assert!(!h264_is_keyframe(&stap));
        // size runs past the end before reaching the IDR
        let stap = [0x78, 0, 2, 0x68, 0xce, 0, 9, 0x65, 0x88];
        assert!(!h264_is_keyframe(&stap));
    }

    #[test]
    fn h264_fu_a() {
        assert!(h264_is_keyframe(&[0x7c, 0x85, 0x88])); // FU-A, S=1, type 5
        assert!(!h264_is_keyframe(&[0x7c, 0x05, 0x88])); // middle fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x45, 0x88])); // end fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x81, 0x9a])); // start of non-IDR
        assert!(!h264_is_keyframe(&[0x7c]));
    }
}
