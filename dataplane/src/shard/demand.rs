//! Tells each simulcast publisher's shard which layers this shard's
//! subscribers need (`forward::layer_demand`), after every allocation pass:
//! a layer nobody here forwards or waits for is then sent as sizes only.

use std::time::Instant;

use crate::forward::layer_demand::{needed, LayerMask};
use crate::msg::TrackId;
use crate::shard::core::ShardCore;
use crate::shard::outbox::Outbox;
use crate::shard::peer::PeerMsg;

impl ShardCore {
    pub(super) fn announce_demand(&mut self, now: Instant, out: &mut Outbox) {
        let mut masks: Vec<(TrackId, LayerMask)> = Vec::new();
        for (track, list) in &self.downtracks {
            if self.registry.uptracks.get(track).is_none_or(|u| u.layers.is_empty()) {
                continue;
            }
            let mask = list.iter().fold(0, |m, dt| {
                let (current, target) = dt.layers();
                m | needed(current, target)
            });
            masks.push((*track, mask));
        }
        self.demand_announcer.retain(|t| self.downtracks.contains_key(t));
        for (track, mask) in masks {
            let Some(owner) = self.registry.track_owner(track) else { continue };
            if owner == self.id {
                self.layer_demand.report(track, owner, mask, now);
            } else if self.demand_announcer.due(track, mask) {
                out.peer.push((owner, PeerMsg::LayerDemand { track, mask }));
            }
        }
    }
}
