//! The `livestream-simulcast` scenario's model: the publisher's three VP8
//! layers and the viewers' three budget classes.
//!
//! The sizes follow from how sfud's allocator decides: it plans with 90% of
//! a subscriber's estimate and upgrades only with 1.2x headroom, so a
//! 600 kbit/s budget admits a middle layer of at most 450 kbit/s, and a
//! 200 kbit/s budget holds a low layer of up to 180 kbit/s.

/// One simulcast encoding the publisher sends.
#[derive(Clone, Copy, Debug)]
pub struct LayerModel {
    pub rid: &'static str,
    /// VP8 payload bits per second (what sfud's rate meter counts).
    pub bps: u64,
    /// What its keyframes say, so a viewer sees which layer it gets.
    pub width: u16,
    pub height: u16,
}

/// Lowest first, as the `a=simulcast` line lists them.
pub const LAYERS: [LayerModel; 3] = [
    LayerModel { rid: "q", bps: 150_000, width: 320, height: 180 },
    LayerModel { rid: "h", bps: 400_000, width: 640, height: 360 },
    LayerModel { rid: "f", bps: 2_000_000, width: 1280, height: 720 },
];

/// The rtp-stream-id extension id the publisher offers (sfud answers with
/// the offerer's ids).
pub const RID_EXT_ID: u8 = 10;
/// The transport-wide-cc extension id viewers offer.
pub const TWCC_EXT_ID: u8 = 3;

/// A viewer's downlink budget.
#[derive(Clone, Copy, Debug)]
pub struct ClassModel {
    pub name: &'static str,
    /// Sent as REMB every `REMB_EVERY`; None sends no REMB.
    pub remb_bps: Option<u64>,
    /// The layer the budget allows: what sfud should choose, and what the
    /// floor forwards statically.
    pub layer: u8,
}

pub const CLASSES: [ClassModel; 3] = [
    ClassModel { name: "200k", remb_bps: Some(200_000), layer: 0 },
    ClassModel { name: "600k", remb_bps: Some(600_000), layer: 1 },
    ClassModel { name: "unlimited", remb_bps: None, layer: 2 },
];

/// Viewer `i` of a step is in class `i % 3`, so every step has a third each.
pub fn class_of(i: usize) -> u8 {
    (i % CLASSES.len()) as u8
}

/// The layer a keyframe's width belongs to.
pub fn layer_of_width(width: u16) -> Option<u8> {
    LAYERS.iter().position(|l| l.width == width).map(|i| i as u8)
}

/// How often a budgeted viewer repeats its REMB (browsers: about once a second
/// or on change; more often here so a new viewer is capped quickly).
pub const REMB_EVERY_MS: u64 = 300;
