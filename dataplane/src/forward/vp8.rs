//! The VP8 payload descriptor (RFC 7741 §4.2), read and rewritten.
//!
//! Each simulcast layer numbers its pictures (PictureID) and its base
//! temporal layer frames (TL0PICIDX) on its own. A subscriber switched
//! between layers, or spared some temporal layers, must still see both
//! count up by one per picture it gets, or its decoder waits for pictures
//! that never come. `Vp8Munger` keeps per-downtrack offsets and rewrites
//! the fields in place (their width never changes).

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Vp8Error {
    #[error("VP8 payload descriptor truncated")]
    Truncated,
}

/// What sfud needs from one packet's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// PictureID, its width (true: 15 bits) and its offset in the payload.
    pub picture_id: Option<(u16, bool, usize)>,
    /// TL0PICIDX and its offset.
    pub tl0picidx: Option<(u8, usize)>,
    /// Temporal layer index (TID), when the T bit is set.
    pub tid: Option<u8>,
    /// Start of a VP8 partition (S) with partition index 0: a frame's first packet.
    pub frame_start: bool,
    /// Descriptor length: the VP8 payload follows.
    pub len: usize,
}

pub fn parse(payload: &[u8]) -> Result<Descriptor, Vp8Error> {
    let b0 = *payload.first().ok_or(Vp8Error::Truncated)?;
    let mut d = Descriptor { frame_start: b0 & 0x10 != 0 && b0 & 0x07 == 0, ..Default::default() };
    let mut pos = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
        pos += 1;
        if x & 0x80 != 0 {
            let m = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
            if m & 0x80 != 0 {
                let lo = *payload.get(pos + 1).ok_or(Vp8Error::Truncated)?;
                d.picture_id = Some((u16::from(m & 0x7f) << 8 | u16::from(lo), true, pos));
                pos += 2;
            } else {
                d.picture_id = Some((u16::from(m), false, pos));
                pos += 1;
            }
        }
        if x & 0x40 != 0 {
            d.tl0picidx = Some((*payload.get(pos).ok_or(Vp8Error::Truncated)?, pos));
            pos += 1;
        }
        if x & 0x30 != 0 {
            let tk = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
            if x & 0x20 != 0 {
                d.tid = Some(tk >> 6);
            }
            pos += 1;
        }
    }
    if pos > payload.len() {
        return Err(Vp8Error::Truncated);
    }
    d.len = pos;
    Ok(d)
}

fn write_picture_id(payload: &mut [u8], at: usize, wide: bool, id: u16) {
    if wide {
        payload[at] = 0x80 | ((id >> 8) as u8 & 0x7f);
        payload[at + 1] = id as u8;
    } else {
        payload[at] = id as u8 & 0x7f;
    }
}

fn modulus(wide: bool) -> u16 {
    if wide {
        1 << 15
    } else {
        1 << 7
    }
}

/// A downtrack's PictureID / TL0PICIDX rewriting.
#[derive(Debug, Default)]
pub struct Vp8Munger {
    /// Added to the source's PictureID (mod its width).
    pid_offset: u16,
    tl0_offset: u8,
    /// Last PictureID and TL0PICIDX written, to continue from on a switch.
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
    /// A source switch happened: the next packet sets the offsets.
    rebase: bool,
    /// Source PictureID of the last picture dropped, so a dropped
    /// multi-packet picture shifts the numbering once.
    last_dropped: Option<u16>,
}

impl Vp8Munger {
    /// The next forwarded picture comes from a new source (layer switch):
    /// its numbers continue from the last ones written.
    pub fn switch_source(&mut self) {
        self.rebase = true;
        self.last_dropped = None;
    }

    /// A picture sfud drops on purpose (a temporal layer it does not
    /// forward): later pictures close the gap it would leave.
    pub fn drop_picture(&mut self, d: &Descriptor) {
        let Some((pid, wide, _)) = d.picture_id else { return };
        if self.rebase || self.last_dropped == Some(pid) {
            return;
        }
        self.last_dropped = Some(pid);
        self.pid_offset = self.pid_offset.wrapping_sub(1) % modulus(wide);
    }

    /// Rewrites the descriptor at the start of `payload` (as parsed into
    /// `d`). Returns the offsets used, for a later resend of this packet.
    pub fn rewrite(&mut self, d: &Descriptor, payload: &mut [u8]) -> (u16, u8) {
        if let Some((pid, wide, _)) = d.picture_id {
            let m = modulus(wide);
            if self.rebase {
                let next = self.last_pid.map_or(pid, |l| l.wrapping_add(1) % m);
                self.pid_offset = next.wrapping_sub(pid).wrapping_add(m) % m;
            }
            self.last_pid = Some(pid.wrapping_add(self.pid_offset) % m);
        }
        if let Some((tl0, _)) = d.tl0picidx {
            if self.rebase {
                let next = self.last_tl0.map_or(tl0, |l| l.wrapping_add(1));
                self.tl0_offset = next.wrapping_sub(tl0);
            }
            self.last_tl0 = Some(tl0.wrapping_add(self.tl0_offset));
        }
        self.rebase = false;
        apply(d, payload, self.pid_offset, self.tl0_offset);
        (self.pid_offset, self.tl0_offset)
    }
}

/// Adds `pid_offset` and `tl0_offset` to the descriptor's fields in place.
pub fn apply(d: &Descriptor, payload: &mut [u8], pid_offset: u16, tl0_offset: u8) {
    if let Some((pid, wide, at)) = d.picture_id {
        if at + usize::from(wide) < payload.len() {
            write_picture_id(payload, at, wide, pid.wrapping_add(pid_offset) % modulus(wide));
        }
    }
    if let Some((tl0, at)) = d.tl0picidx {
        if let Some(b) = payload.get_mut(at) {
            *b = tl0.wrapping_add(tl0_offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// X, I (15-bit), L, T set; S on a frame start.
    fn packet(pid: u16, tl0: u8, tid: u8, start: bool) -> Vec<u8> {
        let b0 = 0x80 | if start { 0x10 } else { 0 };
        vec![b0, 0xe0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, tid << 6, 0x9d, 0x01, 0x2a]
    }

    #[test]
    fn parses_the_fields() {
        let d = parse(&packet(0x1234, 7, 2, true)).unwrap();
        assert_eq!(d.picture_id, Some((0x1234, true, 2)));
        assert_eq!(d.tl0picidx, Some((7, 4)));
        assert_eq!(d.tid, Some(2));
        assert!(d.frame_start);
        assert_eq!(d.len, 6);
        let short = parse(&[0x90, 0x80, 0x05, 0xaa]).unwrap();
        assert_eq!(short.picture_id, Some((5, false, 2)));
        assert_eq!(parse(&[0x00]).unwrap().len, 1);
        assert_eq!(parse(&[0x80]), Err(Vp8Error::Truncated));
        assert_eq!(parse(&[0x80, 0x80, 0x80]), Err(Vp8Error::Truncated));
    }

    fn run(m: &mut Vp8Munger, pid: u16, tl0: u8) -> (u16, u8) {
        let mut p = packet(pid, tl0, 0, true);
        let d = parse(&p).unwrap();
        m.rewrite(&d, &mut p);
        let d = parse(&p).unwrap();
        (d.picture_id.unwrap().0, d.tl0picidx.unwrap().0)
    }

    #[test]
    fn a_layer_switch_continues_both_counters() {
        let mut m = Vp8Munger::default();
        assert_eq!(run(&mut m, 100, 10), (100, 10));
        assert_eq!(run(&mut m, 101, 11), (101, 11));
        m.switch_source();
        // The new layer counts from elsewhere; the subscriber sees +1.
        assert_eq!(run(&mut m, 32000, 200), (102, 12));
        assert_eq!(run(&mut m, 32001, 201), (103, 13));
        // Across the 15-bit and 8-bit wraps.
        // Offsets are 870 and 68 now.
        assert_eq!(run(&mut m, 32767, 255), (869, 67));
        assert_eq!(run(&mut m, 0, 0), (870, 68));
    }

    #[test]
    fn dropped_pictures_leave_no_gap() {
        let mut m = Vp8Munger::default();
        assert_eq!(run(&mut m, 10, 1).0, 10);
        // Picture 11 (two packets) is a dropped temporal layer.
        let d = parse(&packet(11, 1, 2, true)).unwrap();
        m.drop_picture(&d);
        m.drop_picture(&parse(&packet(11, 1, 2, false)).unwrap());
        assert_eq!(run(&mut m, 12, 2).0, 11);
        assert_eq!(run(&mut m, 13, 2).0, 12);
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_stays_in_bounds(data in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok(d) = parse(&data) {
                prop_assert!(d.len <= data.len());
                if let Some((_, wide, at)) = d.picture_id {
                    prop_assert!(at + usize::from(wide) < d.len);
                }
                if let Some((_, at)) = d.tl0picidx {
                    prop_assert!(at < d.len);
                }
            }
        }

        #[test]
        fn rewrite_keeps_length_and_other_bytes(data in proptest::collection::vec(any::<u8>(), 0..12), switch in any::<bool>()) {
            if let Ok(d) = parse(&data) {
                let mut m = Vp8Munger::default();
                run(&mut m, 500, 5);
                if switch { m.switch_source(); }
                let mut out = data.clone();
                m.rewrite(&d, &mut out);
                prop_assert_eq!(out.len(), data.len());
                prop_assert_eq!(&out[d.len..], &data[d.len..]);
                prop_assert_eq!(out[0], data[0]);
            }
        }

        #[test]
        fn switches_always_continue_by_one(a in 0u16..32768, b in 0u16..32768, t0 in any::<u8>(), t1 in any::<u8>()) {
            let mut m = Vp8Munger::default();
            let (p0, l0) = run(&mut m, a, t0);
            m.switch_source();
            let (p1, l1) = run(&mut m, b, t1);
            prop_assert_eq!(p1, (p0 + 1) % 32768);
            prop_assert_eq!(l1, l0.wrapping_add(1));
        }
    }
}
