//! The Dependency Descriptor RTP header extension (AV1 RTP payload format,
//! Appendix A): per packet, which frame it carries (number, spatial and
//! temporal id), how the frame serves each decode target (DTIs), which
//! frames it references and the chains; what an SFU needs to forward
//! AV1 (and VP9/VP8 sent with it) by layer without parsing the codec.
//!
//! Most packets carry 3 bytes that name a *template* in a structure sent
//! on keyframes, so a reader keeps the latest structure: [`DdContext`],
//! one per uptrack. [`parse`]/[`write`] are the raw wire format; both are
//! bounded by the format's own limits (64 templates, 32 decode targets,
//! spatial ids 0..=3, temporal ids 0..=7) and never read past the slice.

mod bits;

use bits::{BitReader, BitWriter};

/// The format's limits (Table A.1, and 5 bits of decode target count).
pub const MAX_TEMPLATES: usize = 64;
pub const MAX_DECODE_TARGETS: usize = 32;
pub const MAX_SPATIAL_ID: u8 = 3;
pub const MAX_TEMPORAL_ID: u8 = 7;
/// References listed per frame. AV1 keeps 7 reference frames; the wire
/// format has no limit of its own, so this one is sfud's.
pub const MAX_FDIFFS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DdError {
    #[error("dependency descriptor ends early")]
    Truncated,
    #[error("dependency descriptor needs a template structure and none has been received")]
    NoStructure,
    #[error("template id {0} is not in the current structure")]
    UnknownTemplate(u8),
    #[error("more than 64 templates")]
    TooManyTemplates,
    #[error("template spatial id above 3 or temporal id above 7")]
    LayerOutOfRange,
    #[error("more than {MAX_FDIFFS} frame references")]
    TooManyFdiffs,
    #[error("descriptor fields disagree: {0}")]
    Inconsistent(&'static str),
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Decode target indication (Table A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Dti {
    #[default]
    NotPresent = 0,
    Discardable = 1,
    /// Forwarding of this decode target may start at this frame.
    Switch = 2,
    Required = 3,
}

impl Dti {
    fn from_bits(v: u32) -> Self {
        match v & 3 {
            0 => Dti::NotPresent,
            1 => Dti::Discardable,
            2 => Dti::Switch,
            _ => Dti::Required,
        }
    }
}

/// A fixed-capacity list: per-packet fields live on the stack, so reading
/// a packet never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct List<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: u8,
}

impl<T: Copy + Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List { items: [T::default(); N], len: 0 }
    }
}

impl<T: Copy + Default + std::fmt::Debug, const N: usize> std::fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl<T: Copy + Default, const N: usize> List<T, N> {
    pub fn as_slice(&self) -> &[T] {
        &self.items[..usize::from(self.len)]
    }

    /// Appends; `Err(())` when full.
    pub fn push(&mut self, v: T) -> Result<(), ()> {
        let slot = self.items.get_mut(usize::from(self.len)).ok_or(())?;
        *slot = v;
        self.len += 1;
        Ok(())
    }

    pub fn from_slice(s: &[T]) -> Option<Self> {
        let mut l = Self::default();
        for &v in s {
            l.push(v).ok()?;
        }
        Some(l)
    }
}

pub type Dtis = List<Dti, MAX_DECODE_TARGETS>;
pub type Fdiffs = List<u16, MAX_FDIFFS>;
pub type ChainFdiffs = List<u8, MAX_DECODE_TARGETS>;

/// One frame dependency template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTemplate {
    pub spatial: u8,
    pub temporal: u8,
    /// One per decode target.
    pub dtis: Vec<Dti>,
    /// Frame number differences to the referenced frames, 1..=16.
    pub fdiffs: Vec<u8>,
    /// Per chain: frame number difference to the previous frame in the
    /// chain, 0..=15 (0: the chain starts here).
    pub chain_fdiffs: Vec<u8>,
}

/// The template dependency structure, sent on keyframes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStructure {
    /// The template id of `templates[0]` (ids count modulo 64).
    pub template_id_offset: u8,
    /// 1..=32.
    pub decode_targets: u8,
    /// The first is (0, 0); each next one repeats the layers, adds one to
    /// the temporal id, or goes to the next spatial id at temporal 0.
    pub templates: Vec<FrameTemplate>,
    /// 0..=decode_targets.
    pub chains: u8,
    /// Per decode target, the chain protecting it (empty when no chains).
    pub protected_by: Vec<u8>,
    /// Per spatial id (0..=the last template's), the maximum render size
    /// (1..=65536 each way).
    pub resolutions: Option<Vec<(u32, u32)>>,
}

impl TemplateStructure {
    /// The (spatial, temporal) layers decode target `dt` is made of: the
    /// highest of the templates that are present in it (§A.4.1's
    /// decode_target_layers()).
    pub fn decode_target_layers(&self, dt: usize) -> (u8, u8) {
        self.templates
            .iter()
            .filter(|t| t.dtis.get(dt).is_some_and(|d| *d != Dti::NotPresent))
            .fold((0, 0), |(s, tid), t| (s.max(t.spatial), tid.max(t.temporal)))
    }

    /// The decode target to forward for a wish of (spatial, temporal): of
    /// the active ones (bit i of `active`: decode target i is being sent),
    /// the one with the most layers within the wish (spatial first), or
    /// the smallest there is if none fits.
    pub fn decode_target_for(&self, spatial: u8, temporal: u8, active: u32) -> usize {
        let layers = (0..usize::from(self.decode_targets))
            .filter(|dt| active.checked_shr(*dt as u32).unwrap_or(0) & 1 == 1)
            .map(|dt| (dt, self.decode_target_layers(dt)));
        layers
            .clone()
            .filter(|(_, (s, t))| *s <= spatial && *t <= temporal)
            .max_by_key(|(dt, l)| (*l, std::cmp::Reverse(*dt)))
            .or_else(|| layers.min_by_key(|(dt, l)| (*l, *dt)))
            .map_or(0, |(dt, _)| dt)
    }

    fn max_spatial(&self) -> u8 {
        self.templates.last().map_or(0, |t| t.spatial)
    }
}

/// One descriptor as it is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    /// 0..=63.
    pub template_id: u8,
    pub frame_number: u16,
    pub structure: Option<TemplateStructure>,
    /// Bit i: decode target i is being sent (only when it changes).
    pub active_decode_targets: Option<u32>,
    pub custom_dtis: Option<Dtis>,
    /// 1..=4096 each.
    pub custom_fdiffs: Option<Fdiffs>,
    pub custom_chains: Option<ChainFdiffs>,
}

/// Parses one descriptor. `latest` is the structure in force; a
/// descriptor carrying its own structure is read with that one instead.
pub fn parse(data: &[u8], latest: Option<&TemplateStructure>) -> Result<Descriptor, DdError> {
    let mut r = BitReader::new(data);
    let start_of_frame = r.bit()?;
    let end_of_frame = r.bit()?;
    let template_id = r.bits(6)? as u8;
    let frame_number = r.bits(16)? as u16;
    let mut d = Descriptor {
        start_of_frame,
        end_of_frame,
        template_id,
        frame_number,
        structure: None,
        active_decode_targets: None,
        custom_dtis: None,
        custom_fdiffs: None,
        custom_chains: None,
    };
    if data.len() <= 3 {
        return Ok(d);
    }
    let has_structure = r.bit()?;
    let has_active = r.bit()?;
    let has_dtis = r.bit()?;
    let has_fdiffs = r.bit()?;
    let has_chains = r.bit()?;
    if has_structure {
        d.structure = Some(read_structure(&mut r)?);
    }
    let s = d.structure.as_ref().or(latest);
    if s.is_none() && (has_active || has_dtis || has_chains) {
        return Err(DdError::NoStructure);
    }
    if s.is_some_and(|s| usize::from(s.decode_targets) > MAX_DECODE_TARGETS) {
        return Err(DdError::Inconsistent("more than 32 decode targets"));
    }
    if let (true, Some(s)) = (has_active, s) {
        d.active_decode_targets = Some(r.bits(u32::from(s.decode_targets))?);
    }
    if let (true, Some(s)) = (has_dtis, s) {
        let mut l = Dtis::default();
        for _ in 0..s.decode_targets {
            l.push(Dti::from_bits(r.bits(2)?)).map_err(|_| DdError::Inconsistent("too many DTIs"))?;
        }
        d.custom_dtis = Some(l);
    }
    if has_fdiffs {
        let mut l = Fdiffs::default();
        loop {
            let size = r.bits(2)?;
            if size == 0 {
                break;
            }
            let v = r.bits(4 * size)? as u16 + 1;
            l.push(v).map_err(|_| DdError::TooManyFdiffs)?;
        }
        d.custom_fdiffs = Some(l);
    }
    if let (true, Some(s)) = (has_chains, s) {
        let mut l = ChainFdiffs::default();
        for _ in 0..s.chains {
            l.push(r.bits(8)? as u8).map_err(|_| DdError::Inconsistent("too many chains"))?;
        }
        d.custom_chains = Some(l);
    }
    Ok(d)
}

fn read_structure(r: &mut BitReader<'_>) -> Result<TemplateStructure, DdError> {
    let template_id_offset = r.bits(6)? as u8;
    let decode_targets = r.bits(5)? as u8 + 1;
    let dt = usize::from(decode_targets);

    let mut templates = Vec::new();
    let (mut spatial, mut temporal) = (0u8, 0u8);
    loop {
        if templates.len() == MAX_TEMPLATES {
            return Err(DdError::TooManyTemplates);
        }
        if spatial > MAX_SPATIAL_ID || temporal > MAX_TEMPORAL_ID {
            return Err(DdError::LayerOutOfRange);
        }
        templates.push(FrameTemplate { spatial, temporal, dtis: Vec::new(), fdiffs: Vec::new(), chain_fdiffs: Vec::new() });
        match r.bits(2)? {
            0 => {}
            1 => temporal += 1,
            2 => {
                spatial += 1;
                temporal = 0;
            }
            _ => break,
        }
    }
    for t in &mut templates {
        t.dtis.reserve_exact(dt);
        for _ in 0..dt {
            t.dtis.push(Dti::from_bits(r.bits(2)?));
        }
    }
    for t in &mut templates {
        while r.bit()? {
            if t.fdiffs.len() == MAX_FDIFFS {
                return Err(DdError::TooManyFdiffs);
            }
            t.fdiffs.push(r.bits(4)? as u8 + 1);
        }
    }
    let chains = r.ns(u32::from(decode_targets) + 1)? as u8;
    let mut protected_by = Vec::new();
    if chains > 0 {
        // libwebrtc (so Chromium) writes ns(chains) here; the draft's
        // pseudo-code says ns(chains + 1). sfud reads what browsers send.
        for _ in 0..dt {
            protected_by.push(r.ns(u32::from(chains))? as u8);
        }
        for t in &mut templates {
            for _ in 0..chains {
                t.chain_fdiffs.push(r.bits(4)? as u8);
            }
        }
    }
    let resolutions = if r.bit()? {
        let n = usize::from(templates.last().map_or(0, |t| t.spatial)) + 1;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push((r.bits(16)? + 1, r.bits(16)? + 1));
        }
        Some(v)
    } else {
        None
    };
    Ok(TemplateStructure { template_id_offset, decode_targets, templates, chains, protected_by, resolutions })
}

fn check_structure(s: &TemplateStructure) -> Result<(), DdError> {
    let dt = usize::from(s.decode_targets);
    if !(1..=MAX_DECODE_TARGETS).contains(&dt) || s.template_id_offset > 63 {
        return Err(DdError::Inconsistent("1..=32 decode targets, template id offset < 64"));
    }
    if s.templates.is_empty() || s.templates.len() > MAX_TEMPLATES {
        return Err(DdError::TooManyTemplates);
    }
    let mut prev = (0u8, 0u8);
    for (i, t) in s.templates.iter().enumerate() {
        let l = (t.spatial, t.temporal);
        let follows = if i == 0 { l == (0, 0) } else { l == prev || l == (prev.0, prev.1 + 1) || l == (prev.0 + 1, 0) };
        if !follows {
            return Err(DdError::Inconsistent("template layers must follow next_layer_idc's steps"));
        }
        if t.spatial > MAX_SPATIAL_ID || t.temporal > MAX_TEMPORAL_ID {
            return Err(DdError::LayerOutOfRange);
        }
        if t.dtis.len() != dt || t.chain_fdiffs.len() != usize::from(s.chains) {
            return Err(DdError::Inconsistent("one DTI per decode target, one chain fdiff per chain"));
        }
        if t.fdiffs.len() > MAX_FDIFFS {
            return Err(DdError::TooManyFdiffs);
        }
        if t.fdiffs.iter().any(|f| !(1..=16).contains(f)) || t.chain_fdiffs.iter().any(|c| *c > 15) {
            return Err(DdError::Inconsistent("template fdiffs 1..=16, chain fdiffs 0..=15"));
        }
        prev = l;
    }
    if usize::from(s.chains) > dt {
        return Err(DdError::Inconsistent("at most one chain per decode target"));
    }
    let want_protected = if s.chains == 0 { 0 } else { dt };
    if s.protected_by.len() != want_protected || s.protected_by.iter().any(|c| *c >= s.chains) {
        return Err(DdError::Inconsistent("each decode target names one existing chain"));
    }
    if s.resolutions.as_ref().is_some_and(|r| r.len() != usize::from(s.max_spatial()) + 1 || r.iter().any(|(w, h)| !(1..=65536).contains(w) || !(1..=65536).contains(h))) {
        return Err(DdError::Inconsistent("one resolution (1..=65536) per spatial id"));
    }
    Ok(())
}

/// Writes `d` (with `latest` in force, as for `parse`) into `out`;
/// returns the bytes written. The extended fields are written only when
/// something needs them, so a template-only descriptor is 3 bytes.
pub fn write(d: &Descriptor, latest: Option<&TemplateStructure>, out: &mut [u8]) -> Result<usize, DdError> {
    if d.template_id > 63 {
        return Err(DdError::Inconsistent("template id is 6 bits"));
    }
    let mut w = BitWriter::new(out);
    w.bit(d.start_of_frame)?;
    w.bit(d.end_of_frame)?;
    w.bits(u32::from(d.template_id), 6)?;
    w.bits(u32::from(d.frame_number), 16)?;
    let extended = d.structure.is_some()
        || d.active_decode_targets.is_some()
        || d.custom_dtis.is_some()
        || d.custom_fdiffs.is_some()
        || d.custom_chains.is_some();
    if !extended {
        return Ok(w.finish());
    }
    let s = d.structure.as_ref().or(latest);
    let needs_structure = d.active_decode_targets.is_some() || d.custom_dtis.is_some() || d.custom_chains.is_some();
    if s.is_none() && needs_structure {
        return Err(DdError::NoStructure);
    }
    if s.is_some_and(|s| usize::from(s.decode_targets) > MAX_DECODE_TARGETS) {
        return Err(DdError::Inconsistent("more than 32 decode targets"));
    }
    for flag in [
        d.structure.is_some(),
        d.active_decode_targets.is_some(),
        d.custom_dtis.is_some(),
        d.custom_fdiffs.is_some(),
        d.custom_chains.is_some(),
    ] {
        w.bit(flag)?;
    }
    if let Some(st) = &d.structure {
        write_structure(st, &mut w)?;
    }
    if let (Some(mask), Some(s)) = (d.active_decode_targets, s) {
        if s.decode_targets < 32 && mask >> s.decode_targets != 0 {
            return Err(DdError::Inconsistent("active decode targets beyond the structure's"));
        }
        w.bits(mask, u32::from(s.decode_targets))?;
    }
    if let (Some(dtis), Some(s)) = (&d.custom_dtis, s) {
        if dtis.as_slice().len() != usize::from(s.decode_targets) {
            return Err(DdError::Inconsistent("one custom DTI per decode target"));
        }
        for dti in dtis.as_slice() {
            w.bits(*dti as u32, 2)?;
        }
    }
    if let Some(f) = &d.custom_fdiffs {
        for &v in f.as_slice() {
            let m = u32::from(v).checked_sub(1).filter(|m| *m < 1 << 12).ok_or(DdError::Inconsistent("fdiffs 1..=4096"))?;
            let size = if m < 1 << 4 { 1 } else if m < 1 << 8 { 2 } else { 3 };
            w.bits(size, 2)?;
            w.bits(m, 4 * size)?;
        }
        w.bits(0, 2)?;
    }
    if let (Some(c), Some(s)) = (&d.custom_chains, s) {
        if c.as_slice().len() != usize::from(s.chains) {
            return Err(DdError::Inconsistent("one custom chain fdiff per chain"));
        }
        for &v in c.as_slice() {
            w.bits(u32::from(v), 8)?;
        }
    }
    Ok(w.finish())
}

fn write_structure(s: &TemplateStructure, w: &mut BitWriter<'_>) -> Result<(), DdError> {
    check_structure(s)?;
    w.bits(u32::from(s.template_id_offset), 6)?;
    w.bits(u32::from(s.decode_targets) - 1, 5)?;
    for pair in s.templates.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let idc = if b.spatial > a.spatial { 2 } else if b.temporal > a.temporal { 1 } else { 0 };
        w.bits(idc, 2)?;
    }
    w.bits(3, 2)?;
    for t in &s.templates {
        for dti in &t.dtis {
            w.bits(*dti as u32, 2)?;
        }
    }
    for t in &s.templates {
        for f in &t.fdiffs {
            w.bit(true)?;
            w.bits(u32::from(*f) - 1, 4)?;
        }
        w.bit(false)?;
    }
    w.ns(u32::from(s.chains), u32::from(s.decode_targets) + 1)?;
    if s.chains > 0 {
        for p in &s.protected_by {
            w.ns(u32::from(*p), u32::from(s.chains))?;
        }
        for t in &s.templates {
            for c in &t.chain_fdiffs {
                w.bits(u32::from(*c), 4)?;
            }
        }
    }
    w.bit(s.resolutions.is_some())?;
    for &(wd, h) in s.resolutions.iter().flatten() {
        w.bits(wd - 1, 16)?;
        w.bits(h - 1, 16)?;
    }
    Ok(())
}

/// What a forwarder needs about one packet's frame, resolved against the
/// structure in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    pub frame_number: u16,
    pub spatial: u8,
    pub temporal: u8,
    pub dtis: Dtis,
    pub fdiffs: Fdiffs,
    pub chain_fdiffs: ChainFdiffs,
    /// Bit i: decode target i is being sent.
    pub active_decode_targets: u32,
    /// This packet brought a new structure (the old one is gone).
    pub new_structure: bool,
}

impl Descriptor {
    /// Applies the template (and any overrides) of `s`.
    pub fn resolve(&self, s: &TemplateStructure, active_decode_targets: u32) -> Result<FrameInfo, DdError> {
        // Ids count modulo 64 (and 256 is a multiple of 64).
        let index = usize::from(self.template_id.wrapping_sub(s.template_id_offset) & 63);
        let t = s.templates.get(index).ok_or(DdError::UnknownTemplate(self.template_id))?;
        let too_long = DdError::Inconsistent("template longer than the format allows");
        let dtis = match self.custom_dtis {
            Some(d) => d,
            None => Dtis::from_slice(&t.dtis).ok_or(too_long)?,
        };
        let fdiffs = match self.custom_fdiffs {
            Some(f) => f,
            None => {
                let mut l = Fdiffs::default();
                for f in &t.fdiffs {
                    l.push(u16::from(*f)).map_err(|_| DdError::TooManyFdiffs)?;
                }
                l
            }
        };
        let chain_fdiffs = match self.custom_chains {
            Some(c) => c,
            None => ChainFdiffs::from_slice(&t.chain_fdiffs).ok_or(too_long)?,
        };
        Ok(FrameInfo {
            start_of_frame: self.start_of_frame,
            end_of_frame: self.end_of_frame,
            frame_number: self.frame_number,
            spatial: t.spatial,
            temporal: t.temporal,
            dtis,
            fdiffs,
            chain_fdiffs,
            active_decode_targets: self.active_decode_targets.unwrap_or(active_decode_targets),
            new_structure: self.structure.is_some(),
        })
    }
}

/// The reader state one uptrack keeps: the latest structure and active
/// decode targets. A packet that fails to parse changes nothing.
#[derive(Debug, Clone, Default)]
pub struct DdContext {
    structure: Option<TemplateStructure>,
    active_decode_targets: u32,
}

impl DdContext {
    pub fn structure(&self) -> Option<&TemplateStructure> {
        self.structure.as_ref()
    }

    /// Reads one packet's descriptor; keeps its structure and active
    /// decode targets if it carries them.
    pub fn read(&mut self, data: &[u8]) -> Result<FrameInfo, DdError> {
        let mut d = parse(data, self.structure.as_ref())?;
        let attached = d.structure.take();
        let s = attached.as_ref().or(self.structure.as_ref()).ok_or(DdError::NoStructure)?;
        // A new structure activates all its decode targets (§A.4.1).
        let base_active = if attached.is_some() { all_targets(s.decode_targets) } else { self.active_decode_targets };
        let mut frame = d.resolve(s, base_active)?;
        frame.new_structure = attached.is_some();
        if let Some(a) = attached {
            self.structure = Some(a);
        }
        self.active_decode_targets = frame.active_decode_targets;
        Ok(frame)
    }
}

fn all_targets(n: u8) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

#[cfg(test)]
mod tests;
