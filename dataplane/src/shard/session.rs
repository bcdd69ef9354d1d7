//! A session owned by this shard: its ICE-lite agent, SRTP contexts and the
//! addresses its peer sends from.

use std::net::SocketAddr;

use crate::ice::IceLite;
use crate::msg::{SessionId, TrackId};
use crate::srtp::SrtpContext;

pub struct Session {
    pub id: SessionId,
    pub ice: IceLite,
    /// Where we send: the nominated (or latest valid) ICE path.
    pub remote: SocketAddr,
    pub tx: Option<SrtpContext>,
    pub rx: Option<SrtpContext>,
    /// Our SSRC as an RTCP sender (RR, PLI) towards this peer.
    pub rtcp_ssrc: u32,
    /// Downtrack SSRCs announced to this peer, to map its PLI/FIR/NACK back.
    pub down_ssrcs: Vec<(u32, TrackId)>,
    pub consent_reported: bool,
}

impl Session {
    pub fn new(id: SessionId, ice: IceLite, remote: SocketAddr) -> Self {
        Session {
            id,
            ice,
            remote,
            tx: None,
            rx: None,
            rtcp_ssrc: rand::random::<u32>() | 1,
            down_ssrcs: Vec::new(),
            consent_reported: false,
        }
    }

    pub fn track_for_ssrc(&self, ssrc: u32) -> Option<TrackId> {
        self.down_ssrcs.iter().find(|(s, _)| *s == ssrc).map(|(_, t)| *t)
    }
}
