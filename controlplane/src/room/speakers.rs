//! Who speaks in a room, from the shards' audio level windows. The rules
//! are ion-sfu's audio observer (`pkg/sfu/audioobserver.go`), restated:
//!
//! - levels are per media stream (msid), summed over its audio tracks;
//! - a stream speaks in an interval when its "active" packets (level at or
//!   under the threshold, counted by the shard) reach `filter` percent of
//!   the packets an interval holds at 20 ms each;
//! - speakers are ordered by active packets, most first, then by the sum
//!   of their levels, lowest (loudest) first; the first is the dominant
//!   speaker;
//! - the list goes to participants only when it changes.
//!
//! One deliberate difference: ion-sfu with `filter = 0` listed every stream,
//! even silent ones; here a stream needs at least one active packet.
//! Sans I/O: windows in, the ranked list out.

use std::collections::HashMap;

use dataplane::msg::{AudioLevelWindow, TrackId};
use serde::Serialize;

/// Active packets a stream needs per interval (ion-sfu: interval / 20 ms
/// packets, times filter %).
pub fn expected_packets(interval_ms: u64, filter_percent: u8) -> u32 {
    let n = interval_ms.saturating_mul(u64::from(filter_percent.min(100))) / 2000;
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

/// One stream's levels over its latest interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamLevel {
    pub stream_id: String,
    /// Packets that carried a level.
    pub packets: u32,
    /// Packets at or above the threshold's loudness.
    pub active_packets: u32,
    /// Sum of the active packets' levels (-dBov): the tie-break.
    #[serde(skip)]
    pub active_level_sum: u32,
    #[serde(skip)]
    pub level_sum: u32,
}

impl StreamLevel {
    /// Mean level of the interval's packets in dBov (0 loudest, -127
    /// silence), when it had any.
    pub fn mean_dbov(&self) -> Option<f64> {
        (self.packets > 0).then(|| -(f64::from(self.level_sum) / f64::from(self.packets)))
    }

    fn add(&mut self, w: &AudioLevelWindow) {
        self.packets = self.packets.saturating_add(w.packets);
        self.level_sum = self.level_sum.saturating_add(w.level_sum);
        self.active_packets = self.active_packets.saturating_add(w.active);
        self.active_level_sum = self.active_level_sum.saturating_add(w.active_level_sum);
    }
}

/// A room's latest window per audio track, the levels per stream they
/// made, and the list last sent.
#[derive(Default)]
pub struct RoomSpeakers {
    windows: HashMap<TrackId, AudioLevelWindow>,
    levels: Vec<StreamLevel>,
    sent: Vec<String>,
}

impl RoomSpeakers {
    /// The track's window for the interval that just ended (replaces the
    /// one before: each shard reports every interval).
    pub fn update(&mut self, w: AudioLevelWindow) {
        self.windows.insert(w.track, w);
    }

    /// Recomputes the levels per stream and the speakers, for the tracks
    /// still in the room: `stream_of` names a track's stream, None for a
    /// track that is gone (its window is dropped). Returns the speakers,
    /// loudest first, when they differ from the list last sent (which they
    /// then become).
    pub fn refresh(&mut self, stream_of: impl Fn(TrackId) -> Option<String>, expected: u32) -> Option<Vec<String>> {
        self.levels = self.collect(stream_of);
        let now = rank(&self.levels, expected);
        if now == self.sent {
            return None;
        }
        self.sent = now.clone();
        Some(now)
    }

    fn collect(&mut self, stream_of: impl Fn(TrackId) -> Option<String>) -> Vec<StreamLevel> {
        let mut by_stream: Vec<StreamLevel> = Vec::new();
        self.windows.retain(|track, w| {
            let Some(stream_id) = stream_of(*track) else { return false };
            match by_stream.iter_mut().find(|s| s.stream_id == stream_id) {
                Some(s) => s.add(w),
                None => {
                    let mut s = StreamLevel { stream_id, ..Default::default() };
                    s.add(w);
                    by_stream.push(s);
                }
            }
            true
        });
        by_stream.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        by_stream
    }

    /// Levels per stream over each one's latest interval.
    pub fn levels(&self) -> &[StreamLevel] {
        &self.levels
    }

    /// The list participants were last sent.
    pub fn current(&self) -> &[String] {
        &self.sent
    }

    /// The dominant speaker's stream id.
    pub fn dominant(&self) -> Option<&str> {
        self.sent.first().map(String::as_str)
    }
}

/// The speaking streams, dominant first.
pub fn rank(levels: &[StreamLevel], expected: u32) -> Vec<String> {
    let mut speaking: Vec<&StreamLevel> = levels.iter().filter(|s| s.active_packets >= expected.max(1)).collect();
    speaking.sort_by(|a, b| {
        b.active_packets
            .cmp(&a.active_packets)
            .then(a.active_level_sum.cmp(&b.active_level_sum))
            .then(a.stream_id.cmp(&b.stream_id))
    });
    speaking.into_iter().map(|s| s.stream_id.clone()).collect()
}

/// The data channel message ion-sdk-js 1.8 hands to `onspeaker`. `params`
/// must be present even when empty: the SDK passes a message without it
/// whole to `onspeaker` (its "legacy" form). ion-sfu's `omitempty` kept an
/// empty list too, since it sat in an `interface{}` that was not nil.
pub fn audio_levels_message(speakers: &[String]) -> String {
    serde_json::json!({ "method": "audioLevels", "params": speakers }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(track: u64, active: u32, active_level_sum: u32) -> AudioLevelWindow {
        AudioLevelWindow { track: TrackId(track), packets: 50, level_sum: active_level_sum + 100 * (50 - active), active, active_level_sum }
    }

    fn streams(t: TrackId) -> Option<String> {
        match t.0 {
            1 | 4 => Some("alice".into()),
            2 => Some("bob".into()),
            3 => Some("carol".into()),
            _ => None,
        }
    }

    #[test]
    fn expected_follows_ion_sfu() {
        assert_eq!(expected_packets(1000, 20), 10);
        assert_eq!(expected_packets(500, 50), 12);
        assert_eq!(expected_packets(1000, 0), 1, "at least one active packet");
        assert_eq!(expected_packets(60_000, 100), 3000);
    }

    #[test]
    fn ranked_by_active_packets_then_loudness() {
        let mut r = RoomSpeakers::default();
        r.update(w(1, 30, 600)); // alice: 30 packets at -20
        r.update(w(2, 30, 300)); // bob: 30 packets at -10, louder
        r.update(w(3, 5, 50)); // carol: under the filter
        assert_eq!(r.refresh(streams, 10), Some(vec!["bob".to_string(), "alice".to_string()]));
        assert_eq!(r.dominant(), Some("bob"));
        r.update(w(1, 45, 900));
        assert_eq!(r.refresh(streams, 10), Some(vec!["alice".to_string(), "bob".to_string()]));
    }

    #[test]
    fn sent_only_when_the_list_changes() {
        let mut r = RoomSpeakers::default();
        assert_eq!(r.refresh(streams, 10), None, "nobody spoke, nobody was speaking");
        r.update(w(2, 20, 200));
        assert_eq!(r.refresh(streams, 10), Some(vec!["bob".to_string()]));
        r.update(w(2, 40, 100));
        assert_eq!(r.refresh(streams, 10), None, "louder, same list");
        r.update(AudioLevelWindow { track: TrackId(2), packets: 0, level_sum: 0, active: 0, active_level_sum: 0 });
        assert_eq!(r.refresh(streams, 10), Some(vec![]), "silence is news too");
        assert_eq!(r.dominant(), None);
    }

    #[test]
    fn a_streams_tracks_add_up_and_gone_tracks_drop_out() {
        let mut r = RoomSpeakers::default();
        r.update(w(1, 6, 60));
        r.update(w(4, 6, 60));
        r.update(w(9, 50, 0)); // no longer in the room
        assert_eq!(r.refresh(streams, 10), Some(vec!["alice".to_string()]));
        let levels = r.levels();
        assert_eq!(levels.len(), 1);
        assert_eq!((levels[0].stream_id.as_str(), levels[0].active_packets), ("alice", 12));
        assert!(!r.windows.contains_key(&TrackId(9)));
    }

    #[test]
    fn mean_level_in_dbov() {
        let s = StreamLevel { packets: 4, level_sum: 100, ..Default::default() };
        assert_eq!(s.mean_dbov(), Some(-25.0));
        assert_eq!(StreamLevel::default().mean_dbov(), None);
    }

    #[test]
    fn message_is_what_ion_sdk_js_reads() {
        let m: serde_json::Value = serde_json::from_str(&audio_levels_message(&["s1".into(), "s2".into()])).unwrap();
        assert_eq!(m, serde_json::json!({"method": "audioLevels", "params": ["s1", "s2"]}));
        let empty: serde_json::Value = serde_json::from_str(&audio_levels_message(&[])).unwrap();
        assert_eq!(empty["params"], serde_json::json!([]), "params present even when empty");
    }
}
