//! How a simulcast track lives in a shard. Each layer is an `Uptrack` of
//! its own on the publisher's shard (its SSRC, sequence space, NACKs, PLIs,
//! receive stats), under an internal id derived from the track's; media
//! fans out under the track's id with the layer number, so downtracks and
//! routing know one track. Retransmission caches are per layer, under the
//! layer's id.

use crate::msg::{TrackId, UptrackSpec};

/// Layer ids keep the track id in the low bits and layer + 1 above them.
/// The controlplane counts ids up from 1, far below this.
const LAYER_SHIFT: u32 = 56;
const TRACK_MASK: u64 = (1 << LAYER_SHIFT) - 1;

/// The internal id of `layer` of `track`; the track's own id for a
/// single-stream track (`layer` None).
pub fn layer_track(track: TrackId, layer: Option<u8>) -> TrackId {
    match layer {
        Some(l) => TrackId((track.0 & TRACK_MASK) | ((u64::from(l) + 1) << LAYER_SHIFT)),
        None => track,
    }
}

/// The track a (layer) id belongs to, and the layer.
pub fn split(id: TrackId) -> (TrackId, Option<u8>) {
    match id.0 >> LAYER_SHIFT {
        0 => (id, None),
        n => (TrackId(id.0 & TRACK_MASK), Some((n - 1) as u8)),
    }
}

/// The per-layer specs of a simulcast track: each keeps the track's
/// codec, ids and feedback, with its layer's SSRCs. A single-stream track
/// is itself.
pub fn layer_specs(spec: &UptrackSpec) -> Vec<(Option<u8>, UptrackSpec)> {
    if spec.layers.is_empty() {
        return vec![(None, spec.clone())];
    }
    spec.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let layer = Some(i as u8);
            let mut s = spec.clone();
            s.track = layer_track(spec.track, layer);
            s.ssrc = l.ssrc;
            s.rtx_ssrc = l.rtx_ssrc;
            (layer, s)
        })
        .collect()
}

/// Every internal id of `spec`'s track (the track's own when single-stream).
pub fn ids(spec: &UptrackSpec) -> Vec<TrackId> {
    if spec.layers.is_empty() {
        return vec![spec.track];
    }
    (0..spec.layers.len()).map(|i| layer_track(spec.track, Some(i as u8))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_split_back() {
        let t = TrackId(42);
        assert_eq!(split(t), (t, None));
        for l in 0..3 {
            let id = layer_track(t, Some(l));
            assert_ne!(id, t);
            assert_eq!(split(id), (t, Some(l)));
        }
        assert_eq!(layer_track(t, None), t);
    }
}
