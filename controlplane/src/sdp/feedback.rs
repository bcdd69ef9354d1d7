//! Which congestion control a section ends up with, and the feedback flags
//! the dataplane gets.
//!
//! transport-cc (send-side estimation, draft-holmer-rmcat-transport-wide-cc)
//! needs both the rtcp-fb and the header extension that numbers packets; a
//! section has either both or neither. When it has them, goog-remb is left
//! out: the sender's own estimate replaces the receiver's. Without them,
//! goog-remb stays when it was offered.

use dataplane::msg::Feedback;

use super::extmap::{Ext, Extensions};

const TRANSPORT_CC: &str = "transport-cc";
const REMB: &str = "goog-remb";
const NACK: &str = "nack";

/// Applies the rule to the feedback sfud would otherwise use (canonically
/// spelled, see `codec::known_feedback`) and to the section's extensions.
pub(crate) fn settle(mut fbs: Vec<String>, ext: &mut Extensions) -> Vec<String> {
    let transport_cc = ext.has(Ext::TransportCc) && fbs.iter().any(|f| f == TRANSPORT_CC);
    if transport_cc {
        fbs.retain(|f| f != REMB);
    } else {
        fbs.retain(|f| f != TRANSPORT_CC);
        ext.remove(Ext::TransportCc);
    }
    fbs
}

/// The dataplane's view of a settled feedback list.
pub(crate) fn flags(fbs: &[String]) -> Feedback {
    let has = |name: &str| fbs.iter().any(|f| f == name);
    Feedback {
        nack: has(NACK),
        transport_cc: has(TRANSPORT_CC),
        remb: has(REMB),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::extmap::{self, Flow};
    use crate::sdp::{MediaKind, SessionDescription};

    fn fbs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn extensions(with_twcc: bool) -> Extensions {
        let line = if with_twcc {
            format!("a=extmap:3 {}\r\n", extmap::TRANSPORT_CC_URI)
        } else {
            String::new()
        };
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
             a=extmap:4 {}\r\n{line}",
            extmap::SDES_MID_URI
        );
        let sd = SessionDescription::parse(&sdp).unwrap();
        extmap::answer(&sd, &sd.media[0], MediaKind::Video, Flow::Receive)
    }

    #[test]
    fn transport_cc_replaces_remb() {
        let mut ext = extensions(true);
        let all = fbs(&["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]);
        let got = settle(all, &mut ext);
        assert_eq!(got, fbs(&["transport-cc", "ccm fir", "nack", "nack pli"]));
        assert_eq!(ext.ids().transport_cc, Some(3));
        assert_eq!(
            flags(&got),
            Feedback {
                nack: true,
                transport_cc: true,
                remb: false
            }
        );
    }

    #[test]
    fn remb_stays_without_the_extension() {
        let mut ext = extensions(false);
        let got = settle(fbs(&["goog-remb", "transport-cc", "nack"]), &mut ext);
        assert_eq!(got, fbs(&["goog-remb", "nack"]));
        assert_eq!(
            flags(&got),
            Feedback {
                nack: true,
                transport_cc: false,
                remb: true
            }
        );
    }

    #[test]
    fn the_extension_goes_without_the_feedback() {
        let mut ext = extensions(true);
        let got = settle(fbs(&["goog-remb", "nack pli"]), &mut ext);
        assert_eq!(got, fbs(&["goog-remb", "nack pli"]));
        assert_eq!(ext.ids().transport_cc, None);
        assert_eq!(ext.ids().mid, Some(4));
        assert_eq!(
            flags(&got),
            Feedback {
                nack: false,
                transport_cc: false,
                remb: true
            }
        );
    }
}
