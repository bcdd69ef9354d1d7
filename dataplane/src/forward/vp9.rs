//! The VP9 RTP payload descriptor (RFC 9628 §4.2): what an SFU reads to
//! forward VP9 SVC by layer, and rewrites (picture id, TL0PICIDX) to keep
//! a subscriber's stream continuous across drops and switches.
//!
//! ```text
//!  I|P|L|F|B|E|V|Z            always
//!  M| picture id (7 or 15)    if I
//!  TID|U|SID|D                if L
//!  TL0PICIDX                  if L and not F (non-flexible mode)
//!  P_DIFF|N  (1..=3 times)    if F and P (flexible mode)
//!  scalability structure      if V
//! ```
//!
//! Parsing is bounded by the fields' own widths (at most 8 spatial layers,
//! 255 pictures in a group, 3 references each) and never reads past the
//! slice; the one allocation is the scalability structure, which a
//! publisher sends on keyframes only.

/// Errors reading or writing a VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Vp9Error {
    #[error("VP9 payload descriptor ends early (needs more than {0} bytes)")]
    Truncated(usize),
    #[error("flexible mode picture has more than 3 reference P_DIFFs")]
    TooManyReferences,
    #[error("descriptor fields disagree: {0}")]
    Inconsistent(&'static str),
    #[error("the payload has no {0} to rewrite")]
    NoSuchField(&'static str),
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
}

/// The picture id as the publisher sent it: 7 bits (M=0) or 15 bits (M=1).
/// The width is kept, so a rewrite never moves the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureId {
    Short(u8),
    Long(u16),
}

impl PictureId {
    pub fn value(self) -> u16 {
        match self {
            PictureId::Short(v) => u16::from(v),
            PictureId::Long(v) => v,
        }
    }

    /// The same width holding `v` (wrapped to 7 or 15 bits).
    pub fn with_value(self, v: u16) -> Self {
        match self {
            PictureId::Short(_) => PictureId::Short((v & 0x7f) as u8),
            PictureId::Long(_) => PictureId::Long(v & 0x7fff),
        }
    }

    /// 128 or 32768: picture ids count modulo this.
    pub fn modulus(self) -> u32 {
        match self {
            PictureId::Short(_) => 1 << 7,
            PictureId::Long(_) => 1 << 15,
        }
    }
}

/// The layer indices byte (L=1), plus TL0PICIDX in non-flexible mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerIndices {
    /// TID, 0..=7.
    pub temporal: u8,
    /// U: a switching-up point (see `svc_filter` for how sfud reads it).
    pub switching_up: bool,
    /// SID, 0..=7.
    pub spatial: u8,
    /// D: this layer frame depends on the lower spatial layer of the same picture.
    pub inter_layer_dependent: bool,
    /// Present exactly in non-flexible mode.
    pub tl0_pic_idx: Option<u8>,
}

/// One picture of the group described by the scalability structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPicture {
    pub temporal: u8,
    pub switching_up: bool,
    /// Up to 3 P_DIFFs (R is 2 bits); `refs[..ref_count]` are meaningful.
    pub refs: [u8; 3],
    pub ref_count: u8,
}

impl GroupPicture {
    pub fn ref_diffs(&self) -> &[u8] {
        &self.refs[..usize::from(self.ref_count.min(3))]
    }
}

/// The scalability structure (V=1), sent by the publisher on keyframes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalabilityStructure {
    /// N_S + 1, 1..=8.
    pub spatial_layers: u8,
    /// Y=1: one (width, height) per spatial layer.
    pub resolutions: Option<Vec<(u16, u16)>>,
    /// G=1: the pictures of the group (N_G of them, at most 255).
    pub group: Option<Vec<GroupPicture>>,
}

/// A parsed VP9 payload descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// P: the picture references earlier pictures (0 on keyframes and on
    /// frames that predict from lower spatial layers only).
    pub inter_picture_predicted: bool,
    /// F: flexible mode (references listed per picture, no TL0PICIDX).
    pub flexible: bool,
    /// B: first packet of a layer frame.
    pub start_of_frame: bool,
    /// E: last packet of a layer frame.
    pub end_of_frame: bool,
    /// Z: not used as a reference by upper spatial layers.
    pub not_ref_for_upper: bool,
    pub picture_id: Option<PictureId>,
    pub layer: Option<LayerIndices>,
    /// Flexible mode with P=1: 1..=3 P_DIFFs (7 bits each).
    pub ref_diffs: [u8; 3],
    pub ref_count: u8,
    pub ss: Option<ScalabilityStructure>,
    /// Bytes the descriptor takes in front of the VP9 frame data.
    pub header_len: usize,
}

impl Vp9Descriptor {
    pub fn ref_diffs(&self) -> &[u8] {
        &self.ref_diffs[..usize::from(self.ref_count.min(3))]
    }

    /// First packet of a keyframe: base spatial layer, no inter-picture
    /// prediction.
    pub fn is_keyframe_start(&self) -> bool {
        self.start_of_frame
            && !self.inter_picture_predicted
            && self.layer.map_or(true, |l| l.spatial == 0)
    }
}

/// Reads bytes with a position, failing with `Truncated` at the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, Vp9Error> {
        let b = *self.buf.get(self.pos).ok_or(Vp9Error::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, Vp9Error> {
        Ok(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
}

/// Parses the descriptor at the start of an RTP payload.
pub fn parse(payload: &[u8]) -> Result<Vp9Descriptor, Vp9Error> {
    let mut c = Cursor { buf: payload, pos: 0 };
    let b0 = c.byte()?;
    let has_pid = b0 & 0x80 != 0;
    let inter_picture_predicted = b0 & 0x40 != 0;
    let has_layer = b0 & 0x20 != 0;
    let flexible = b0 & 0x10 != 0;
    let has_ss = b0 & 0x02 != 0;

    let picture_id = if has_pid {
        let b = c.byte()?;
        if b & 0x80 != 0 {
            Some(PictureId::Long((u16::from(b & 0x7f) << 8) | u16::from(c.byte()?)))
        } else {
            Some(PictureId::Short(b))
        }
    } else {
        None
    };

    let layer = if has_layer {
        let b = c.byte()?;
        let tl0_pic_idx = if flexible { None } else { Some(c.byte()?) };
        Some(LayerIndices {
            temporal: b >> 5,
            switching_up: b & 0x10 != 0,
            spatial: (b >> 1) & 0x07,
            inter_layer_dependent: b & 0x01 != 0,
            tl0_pic_idx,
        })
    } else {
        None
    };

    let mut ref_diffs = [0u8; 3];
    let mut ref_count = 0u8;
    if flexible && inter_picture_predicted {
        loop {
            let b = c.byte()?;
            let slot = ref_diffs.get_mut(usize::from(ref_count)).ok_or(Vp9Error::TooManyReferences)?;
            *slot = b >> 1;
            ref_count += 1;
            if b & 0x01 == 0 {
                break;
            }
        }
    }

    let ss = if has_ss { Some(parse_ss(&mut c)?) } else { None };

    Ok(Vp9Descriptor {
        inter_picture_predicted,
        flexible,
        start_of_frame: b0 & 0x08 != 0,
        end_of_frame: b0 & 0x04 != 0,
        not_ref_for_upper: b0 & 0x01 != 0,
        picture_id,
        layer,
        ref_diffs,
        ref_count,
        ss,
        header_len: c.pos,
    })
}

fn parse_ss(c: &mut Cursor<'_>) -> Result<ScalabilityStructure, Vp9Error> {
    let b = c.byte()?;
    let spatial_layers = (b >> 5) + 1;
    let resolutions = if b & 0x10 != 0 {
        let mut v = Vec::with_capacity(usize::from(spatial_layers));
        for _ in 0..spatial_layers {
            v.push((c.u16()?, c.u16()?));
        }
        Some(v)
    } else {
        None
    };
    let group = if b & 0x08 != 0 {
        let n = c.byte()?;
        let mut v = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let h = c.byte()?;
            let ref_count = (h >> 2) & 0x03;
            let mut refs = [0u8; 3];
            for r in refs.iter_mut().take(usize::from(ref_count)) {
                *r = c.byte()?;
            }
            v.push(GroupPicture { temporal: h >> 5, switching_up: h & 0x10 != 0, refs, ref_count });
        }
        Some(v)
    } else {
        None
    };
    Ok(ScalabilityStructure { spatial_layers, resolutions, group })
}

/// Bytes `write` would produce for `d`.
pub fn encoded_len(d: &Vp9Descriptor) -> usize {
    let mut n = 1;
    n += match d.picture_id {
        None => 0,
        Some(PictureId::Short(_)) => 1,
        Some(PictureId::Long(_)) => 2,
    };
    if let Some(l) = d.layer {
        n += 1 + usize::from(l.tl0_pic_idx.is_some());
    }
    if d.flexible && d.inter_picture_predicted {
        n += usize::from(d.ref_count);
    }
    if let Some(ss) = &d.ss {
        n += 1;
        n += ss.resolutions.as_ref().map_or(0, |r| 4 * r.len());
        if let Some(g) = &ss.group {
            n += 1 + g.iter().map(|p| 1 + usize::from(p.ref_count)).sum::<usize>();
        }
    }
    n
}

/// Checks what the wire format cannot carry before anything is written.
fn check(d: &Vp9Descriptor) -> Result<(), Vp9Error> {
    if let Some(l) = d.layer {
        if l.temporal > 7 || l.spatial > 7 {
            return Err(Vp9Error::Inconsistent("TID and SID are 3 bits"));
        }
        if l.tl0_pic_idx.is_some() == d.flexible {
            return Err(Vp9Error::Inconsistent("TL0PICIDX is present exactly in non-flexible mode"));
        }
    }
    match d.picture_id {
        Some(PictureId::Short(v)) if v > 0x7f => return Err(Vp9Error::Inconsistent("short picture id is 7 bits")),
        Some(PictureId::Long(v)) if v > 0x7fff => return Err(Vp9Error::Inconsistent("long picture id is 15 bits")),
        _ => {}
    }
    let wants_refs = d.flexible && d.inter_picture_predicted;
    if wants_refs != (d.ref_count > 0) || d.ref_count > 3 {
        return Err(Vp9Error::Inconsistent("P_DIFFs: 1 to 3 exactly when F=1 and P=1"));
    }
    if d.ref_diffs().iter().any(|&r| r > 0x7f) {
        return Err(Vp9Error::Inconsistent("P_DIFF is 7 bits"));
    }
    if let Some(ss) = &d.ss {
        if !(1..=8).contains(&ss.spatial_layers) {
            return Err(Vp9Error::Inconsistent("1 to 8 spatial layers"));
        }
        if ss.resolutions.as_ref().is_some_and(|r| r.len() != usize::from(ss.spatial_layers)) {
            return Err(Vp9Error::Inconsistent("one resolution per spatial layer"));
        }
        if let Some(g) = &ss.group {
            if g.len() > 255 || g.iter().any(|p| p.temporal > 7 || p.ref_count > 3) {
                return Err(Vp9Error::Inconsistent("N_G <= 255, TID 3 bits, R <= 3"));
            }
        }
    }
    Ok(())
}

/// Writes `d` into the front of `out`; returns the bytes written. The
/// inverse of `parse` (`header_len` is ignored: it is an output of parse).
pub fn write(d: &Vp9Descriptor, out: &mut [u8]) -> Result<usize, Vp9Error> {
    check(d)?;
    let need = encoded_len(d);
    let have = out.len();
    let out = out.get_mut(..need).ok_or(Vp9Error::BufferTooSmall { need, have })?;
    let mut n = 0;
    let mut put = |b: u8| {
        out[n] = b;
        n += 1;
    };
    let bit = |on: bool, mask: u8| if on { mask } else { 0 };
    put(bit(d.picture_id.is_some(), 0x80)
        | bit(d.inter_picture_predicted, 0x40)
        | bit(d.layer.is_some(), 0x20)
        | bit(d.flexible, 0x10)
        | bit(d.start_of_frame, 0x08)
        | bit(d.end_of_frame, 0x04)
        | bit(d.ss.is_some(), 0x02)
        | bit(d.not_ref_for_upper, 0x01));
    match d.picture_id {
        None => {}
        Some(PictureId::Short(v)) => put(v),
        Some(PictureId::Long(v)) => {
            put(0x80 | (v >> 8) as u8);
            put(v as u8);
        }
    }
    if let Some(l) = d.layer {
        put((l.temporal << 5) | bit(l.switching_up, 0x10) | (l.spatial << 1) | bit(l.inter_layer_dependent, 0x01));
        if let Some(t) = l.tl0_pic_idx {
            put(t);
        }
    }
    let refs = d.ref_diffs();
    for (i, r) in refs.iter().enumerate() {
        put((r << 1) | bit(i + 1 < refs.len(), 0x01));
    }
    if let Some(ss) = &d.ss {
        put(((ss.spatial_layers - 1) << 5) | bit(ss.resolutions.is_some(), 0x10) | bit(ss.group.is_some(), 0x08));
        for &(w, h) in ss.resolutions.iter().flatten() {
            for b in w.to_be_bytes().into_iter().chain(h.to_be_bytes()) {
                put(b);
            }
        }
        if let Some(g) = &ss.group {
            put(g.len() as u8);
            for p in g {
                put((p.temporal << 5) | bit(p.switching_up, 0x10) | (p.ref_count << 2));
                for &r in p.ref_diffs() {
                    put(r);
                }
            }
        }
    }
    Ok(n)
}

/// What a forwarder changes in place: the picture id (kept in its width,
/// wrapped) and TL0PICIDX. `None` leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrite {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// Rewrites the picture id and/or TL0PICIDX of the descriptor at the
/// start of `payload` in place, reading only the bytes in front of them.
/// Asking for a field the packet lacks is `NoSuchField` and changes
/// nothing.
pub fn rewrite(payload: &mut [u8], w: Rewrite) -> Result<(), Vp9Error> {
    let b0 = *payload.first().ok_or(Vp9Error::Truncated(0))?;
    let mut pos = 1;
    let pid_at = if b0 & 0x80 != 0 {
        let b = *payload.get(pos).ok_or(Vp9Error::Truncated(pos))?;
        let long = b & 0x80 != 0;
        let at = (pos, long);
        pos += 1 + usize::from(long);
        Some(at)
    } else {
        None
    };
    // TL0PICIDX follows the layer byte in non-flexible mode only.
    let tl0_at = (b0 & 0x20 != 0 && b0 & 0x10 == 0).then_some(pos + 1);
    if pos + usize::from(b0 & 0x20 != 0) + usize::from(tl0_at.is_some()) > payload.len() {
        return Err(Vp9Error::Truncated(payload.len()));
    }
    if w.picture_id.is_some() && pid_at.is_none() {
        return Err(Vp9Error::NoSuchField("picture id"));
    }
    if w.tl0_pic_idx.is_some() && tl0_at.is_none() {
        return Err(Vp9Error::NoSuchField("TL0PICIDX"));
    }
    if let (Some(v), Some((at, long))) = (w.picture_id, pid_at) {
        if long {
            payload[at] = 0x80 | ((v >> 8) as u8 & 0x7f);
            payload[at + 1] = v as u8;
        } else {
            payload[at] = (v & 0x7f) as u8;
        }
    }
    if let (Some(v), Some(at)) = (w.tl0_pic_idx, tl0_at) {
        payload[at] = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
