//! ICE-lite agent (RFC 8445 §2.5, §7.3) with consent freshness (RFC 7675).
//!
//! sfud is always the lite, and therefore controlled, side: it never sends
//! checks, it only answers the browser's Binding requests and learns paths
//! from them. Sans-IO: the caller parses the datagram, passes it in with
//! its source and the current time, and sends whatever is written to `out`.
//!
//! Requests that fail authentication (unknown USERNAME, bad or missing
//! MESSAGE-INTEGRITY, bad FINGERPRINT) are returned as `Err` and must be
//! dropped without a reply. RFC 8489 §9.1.3 allows a 401 there, but an
//! unauthenticated error reply would only let anyone on the internet bounce
//! traffic off the media port, and browsers retransmit anyway.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::stun::{attr, method, Class, IntegrityKey, Message, MessageWriter, StunError};

/// RFC 7675 §5.1: consent is lost 30 s after the last valid check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Candidate pairs a browser really uses stay in single digits (host,
/// srflx, relay, per family); beyond that the least recently valid goes.
const MAX_PATHS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IceError {
    #[error("not a STUN Binding message")]
    NotBinding,
    #[error("unexpected STUN class {0:?}")]
    UnexpectedClass(Class),
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    #[error("no USERNAME")]
    MissingUsername,
    #[error("USERNAME does not match this session")]
    UnknownUsername,
    #[error("no MESSAGE-INTEGRITY")]
    MissingIntegrity,
    #[error("MESSAGE-INTEGRITY does not match")]
    BadIntegrity,
    #[error("encoding the reply: {0}")]
    Encode(#[from] StunError),
}

/// What `handle_stun` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IceReply {
    /// Bytes of reply written to `out`; 0 means send nothing.
    pub len: usize,
    /// The request carried USE-CANDIDATE and was valid: `src` is now the
    /// nominated path. Browsers repeat USE-CANDIDATE on later checks, so
    /// this can be true again for the same path.
    pub nominated: bool,
    /// This was the first valid request this agent has seen (the shard
    /// claims the session on it).
    pub first_valid: bool,
    /// A check that passed USERNAME, MESSAGE-INTEGRITY and the ICE rules,
    /// answered with success. Only then may the caller learn `src` as a
    /// path: indications carry no integrity, and anyone can send one from
    /// a spoofed address.
    pub authenticated: bool,
}

#[derive(Debug, Clone, Copy)]
struct Path {
    addr: SocketAddr,
    last_valid: Instant,
}

/// One ICE-lite agent per session.
pub struct IceLite {
    local_ufrag: String,
    key: IntegrityKey,
    remote_ufrag: Option<String>,
    paths: [Option<Path>; MAX_PATHS],
    nominated: Option<SocketAddr>,
    any_valid: bool,
}

impl IceLite {
    pub fn new(local_ufrag: &str, local_pwd: &str) -> Self {
        Self {
            local_ufrag: local_ufrag.to_owned(),
            key: IntegrityKey::new(local_pwd.as_bytes()),
            remote_ufrag: None,
            paths: [None; MAX_PATHS],
            nominated: None,
            any_valid: false,
        }
    }

    /// Once set, the USERNAME's remote half must equal `ufrag`. The remote
    /// password is not used: a lite agent never sends checks of its own.
    pub fn set_remote_credentials(&mut self, ufrag: &str, _pwd: &str) {
        self.remote_ufrag = Some(ufrag.to_owned());
    }

    /// ICE restart: checks must carry the new credentials from now on. The
    /// known paths stay valid, so media and consent carry on until the
    /// peer's new checks arrive (RFC 8445 §9).
    pub fn restart(&mut self, local_ufrag: &str, local_pwd: &str, remote_ufrag: &str) {
        self.local_ufrag = local_ufrag.to_owned();
        self.key = IntegrityKey::new(local_pwd.as_bytes());
        self.remote_ufrag = (!remote_ufrag.is_empty()).then(|| remote_ufrag.to_owned());
    }

    pub fn local_ufrag(&self) -> &str {
        &self.local_ufrag
    }

    /// Handles one STUN message that arrived from `src`, writing any reply
    /// into `out`. No state changes unless `Ok` is returned.
    pub fn handle_stun(
        &mut self,
        msg: &Message,
        src: SocketAddr,
        now: Instant,
        out: &mut [u8],
    ) -> Result<IceReply, IceError> {
        if msg.method() != method::BINDING {
            return Err(IceError::NotBinding);
        }
        match msg.class() {
            Class::Request => {}
            // Keepalives: RFC 7675 §5.1 says they do not refresh consent.
            Class::Indication => return Ok(IceReply::default()),
            c => return Err(IceError::UnexpectedClass(c)),
        }
        if msg.has_fingerprint() {
            msg.check_fingerprint().map_err(|_| IceError::BadFingerprint)?;
        }
        self.check_username(msg.username().ok_or(IceError::MissingUsername)?)?;
        msg.check_integrity_keyed(&self.key).map_err(|e| match e {
            StunError::MissingIntegrity => IceError::MissingIntegrity,
            _ => IceError::BadIntegrity,
        })?;

        let tid = msg.transaction_id();
        if msg.priority().is_none() {
            // RFC 8445 §7.3: PRIORITY is mandatory in checks.
            let len = self.error_response(tid, 400, "Bad Request", out)?;
            return Ok(IceReply { len, ..IceReply::default() });
        }
        if msg.ice_controlled().is_some() {
            // RFC 8445 §7.3.1.1: both sides think they are controlled. A
            // lite agent cannot take the controlling role, so the peer must.
            let len = self.error_response(tid, 487, "Role Conflict", out)?;
            return Ok(IceReply { len, ..IceReply::default() });
        }

        let len = self.success_response(tid, src, out)?;
        let first_valid = !self.any_valid;
        self.any_valid = true;
        self.touch(src, now);
        let nominated = msg.use_candidate();
        if nominated {
            self.nominated = Some(src);
        }
        Ok(IceReply { len, nominated, first_valid, authenticated: true })
    }

    /// The nominated path, else the path with the most recent valid request.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected_path().map(|p| p.addr)
    }

    /// RFC 7675: true once 30 s have passed without a valid request on the
    /// selected path. False while there is no path at all: a session that
    /// never connected is for the caller's connect timeout.
    pub fn consent_expired(&self, now: Instant) -> bool {
        self.selected_path()
            .is_some_and(|p| now.saturating_duration_since(p.last_valid) >= CONSENT_TIMEOUT)
    }

    /// `addr` has sent a valid request (and has not been evicted since).
    pub fn knows(&self, addr: SocketAddr) -> bool {
        self.paths.iter().flatten().any(|p| p.addr == addr)
    }

    fn selected_path(&self) -> Option<&Path> {
        let paths = self.paths.iter().flatten();
        match self.nominated {
            Some(n) => paths.into_iter().find(|p| p.addr == n),
            None => paths.max_by_key(|p| p.last_valid),
        }
    }

    fn check_username(&self, user: &[u8]) -> Result<(), IceError> {
        let colon = user.iter().position(|&b| b == b':').ok_or(IceError::UnknownUsername)?;
        let (local, remote) = (user.get(..colon), user.get(colon + 1..));
        if local != Some(self.local_ufrag.as_bytes()) {
            return Err(IceError::UnknownUsername);
        }
        if let Some(r) = &self.remote_ufrag {
            if remote != Some(r.as_bytes()) {
                return Err(IceError::UnknownUsername);
            }
        }
        Ok(())
    }

    fn touch(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(p) = self.paths.iter_mut().flatten().find(|p| p.addr == addr) {
            p.last_valid = now;
            return;
        }
        let fresh = Some(Path { addr, last_valid: now });
        if let Some(slot) = self.paths.iter_mut().find(|s| s.is_none()) {
            *slot = fresh;
            return;
        }
        // Full: drop the stalest path, but never the nominated one.
        let nominated = self.nominated;
        let victim = self
            .paths
            .iter_mut()
            .filter(|s| s.is_some_and(|p| Some(p.addr) != nominated))
            .min_by_key(|s| s.map(|p| p.last_valid));
        if let Some(slot) = victim {
            *slot = fresh;
        }
    }

    fn success_response(&self, tid: &[u8; 12], src: SocketAddr, out: &mut [u8]) -> Result<usize, StunError> {
        let mut w = MessageWriter::new(out, Class::Success, method::BINDING, tid)?;
        w.add_xor_address(attr::XOR_MAPPED_ADDRESS, src)?;
        w.add_message_integrity_keyed(&self.key)?;
        w.add_fingerprint()?;
        Ok(w.finish())
    }

    fn error_response(&self, tid: &[u8; 12], code: u16, reason: &str, out: &mut [u8]) -> Result<usize, StunError> {
        let mut w = MessageWriter::new(out, Class::Error, method::BINDING, tid)?;
        w.add_error_code(code, reason)?;
        w.add_message_integrity_keyed(&self.key)?;
        w.add_fingerprint()?;
        Ok(w.finish())
    }
}

impl std::fmt::Debug for IceLite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceLite")
            .field("local_ufrag", &self.local_ufrag)
            .field("remote_ufrag", &self.remote_ufrag)
            .field("nominated", &self.nominated)
            .field("paths", &self.paths.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UFRAG: &str = "sfuU";
    const PWD: &str = "sfu-password-0123456789";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[derive(Clone, Copy)]
    struct Req<'a> {
        user: &'a str,
        pwd: &'a str,
        priority: bool,
        use_candidate: bool,
        controlled: bool,
        tid: [u8; 12],
    }

    impl Default for Req<'_> {
        fn default() -> Self {
            Self {
                user: "sfuU:brws",
                pwd: PWD,
                priority: true,
                use_candidate: false,
                controlled: false,
                tid: [3; 12],
            }
        }
    }

    fn build(r: Req) -> Vec<u8> {
        let mut b = vec![0u8; 256];
        let mut w = MessageWriter::new(&mut b, Class::Request, method::BINDING, &r.tid).unwrap();
        w.add_attr(attr::USERNAME, r.user.as_bytes()).unwrap();
        if r.priority {
            w.add_u32(attr::PRIORITY, 0x6e7f_1eff).unwrap();
        }
        if r.controlled {
            w.add_u64(attr::ICE_CONTROLLED, 42).unwrap();
        } else {
            w.add_u64(attr::ICE_CONTROLLING, 42).unwrap();
        }
        if r.use_candidate {
            w.add_attr(attr::USE_CANDIDATE, &[]).unwrap();
        }
        w.add_message_integrity(r.pwd.as_bytes()).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        b.truncate(n);
        b
    }

    fn send(ice: &mut IceLite, r: Req, src: SocketAddr, now: Instant) -> (Result<IceReply, IceError>, Vec<u8>) {
        let raw = build(r);
        let msg = Message::parse(&raw).unwrap();
        let mut out = [0u8; 256];
        let res = ice.handle_stun(&msg, src, now, &mut out);
        let len = res.map_or(0, |r| r.len);
        (res, out[..len].to_vec())
    }

    #[test]
    fn round_trip() {
        let mut ice = IceLite::new(UFRAG, PWD);
        ice.set_remote_credentials("brws", "ignored");
        let src = addr("203.0.113.7:54321");
        let t0 = Instant::now();
        let (res, out) = send(&mut ice, Req::default(), src, t0);
        let r = res.unwrap();
        assert!(r.first_valid && !r.nominated);
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.class(), Class::Success);
        assert_eq!(resp.method(), method::BINDING);
        assert_eq!(resp.transaction_id(), &[3; 12]);
        assert_eq!(resp.xor_mapped_address(), Some(src));
        resp.check_integrity(PWD.as_bytes()).unwrap();
        resp.check_fingerprint().unwrap();
        assert!(ice.knows(src));
        assert_eq!(ice.selected(), Some(src));

        let (res, _) = send(&mut ice, Req::default(), src, t0);
        assert!(!res.unwrap().first_valid);
    }

    #[test]
    fn ipv6_source() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("[2001:db8::7]:9");
        let (res, out) = send(&mut ice, Req { tid: [0xa5; 12], ..Req::default() }, src, Instant::now());
        res.unwrap();
        assert_eq!(Message::parse(&out).unwrap().xor_mapped_address(), Some(src));
    }

    #[test]
    fn wrong_password_dropped() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("203.0.113.7:1");
        let (res, out) = send(&mut ice, Req { pwd: "nope", ..Req::default() }, src, Instant::now());
        assert_eq!(res, Err(IceError::BadIntegrity));
        assert!(out.is_empty());
        assert!(!ice.knows(src));
        assert_eq!(ice.selected(), None);
    }

    #[test]
    fn wrong_ufrag_dropped() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("203.0.113.7:1");
        let now = Instant::now();
        for user in ["other:brws", "sfuUbrws", "sfu:brws", "sfuUx:brws", ""] {
            let (res, _) = send(&mut ice, Req { user, ..Req::default() }, src, now);
            assert_eq!(res, Err(IceError::UnknownUsername), "{user}");
        }
        ice.set_remote_credentials("brws", "x");
        let (res, _) = send(&mut ice, Req { user: "sfuU:evil", ..Req::default() }, src, now);
        assert_eq!(res, Err(IceError::UnknownUsername));
        assert!(!ice.knows(src));
        let (res, _) = send(&mut ice, Req::default(), src, now);
        assert!(res.is_ok());
    }

    #[test]
    fn missing_integrity_and_bad_fingerprint_dropped() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("203.0.113.7:1");
        let mut b = [0u8; 128];
        let mut w = MessageWriter::new(&mut b, Class::Request, method::BINDING, &[1; 12]).unwrap();
        w.add_attr(attr::USERNAME, b"sfuU:brws").unwrap();
        w.add_u32(attr::PRIORITY, 1).unwrap();
        let n = w.finish();
        let msg = Message::parse(&b[..n]).unwrap();
        let mut out = [0u8; 128];
        assert_eq!(ice.handle_stun(&msg, src, Instant::now(), &mut out), Err(IceError::MissingIntegrity));

        let mut raw = build(Req::default());
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let msg = Message::parse(&raw).unwrap();
        assert_eq!(ice.handle_stun(&msg, src, Instant::now(), &mut out), Err(IceError::BadFingerprint));
        assert!(!ice.knows(src));
    }

    #[test]
    fn role_conflict_487() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("203.0.113.7:1");
        let (res, out) = send(&mut ice, Req { controlled: true, ..Req::default() }, src, Instant::now());
        let r = res.unwrap();
        assert!(!r.first_valid && !r.nominated);
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.class(), Class::Error);
        assert_eq!(resp.error_code(), Some((487, "Role Conflict")));
        assert_eq!(resp.transaction_id(), &[3; 12]);
        resp.check_integrity(PWD.as_bytes()).unwrap();
        resp.check_fingerprint().unwrap();
        assert!(!ice.knows(src));
    }

    #[test]
    fn missing_priority_400() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("203.0.113.7:1");
        let (res, out) = send(&mut ice, Req { priority: false, ..Req::default() }, src, Instant::now());
        assert!(res.is_ok());
        let resp = Message::parse(&out).unwrap();
        assert_eq!(resp.error_code().map(|e| e.0), Some(400));
        resp.check_integrity(PWD.as_bytes()).unwrap();
        assert!(!ice.knows(src));
    }

    #[test]
    fn nomination_sticks() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let (a, b) = (addr("198.51.100.1:1000"), addr("198.51.100.2:2000"));
        let t0 = Instant::now();
        send(&mut ice, Req::default(), a, t0).0.unwrap();
        send(&mut ice, Req::default(), b, t0 + Duration::from_secs(1)).0.unwrap();
        assert_eq!(ice.selected(), Some(b), "most recent without nomination");

        let r = send(&mut ice, Req { use_candidate: true, ..Req::default() }, a, t0 + Duration::from_secs(2)).0.unwrap();
        assert!(r.nominated && !r.first_valid);
        send(&mut ice, Req::default(), b, t0 + Duration::from_secs(3)).0.unwrap();
        assert_eq!(ice.selected(), Some(a), "nominated beats more recent");

        let r = send(&mut ice, Req { use_candidate: true, ..Req::default() }, b, t0 + Duration::from_secs(4)).0.unwrap();
        assert!(r.nominated);
        assert_eq!(ice.selected(), Some(b), "renomination");
    }

    #[test]
    fn restart_switches_credentials_and_keeps_the_path() {
        let mut ice = IceLite::new(UFRAG, PWD);
        ice.set_remote_credentials("brws", "");
        let src = addr("198.51.100.1:1000");
        let t0 = Instant::now();
        send(&mut ice, Req { use_candidate: true, ..Req::default() }, src, t0).0.unwrap();
        ice.restart("newU", "new-password-0123456789", "brw2");
        assert_eq!(ice.local_ufrag(), "newU");
        assert_eq!(ice.selected(), Some(src), "the path survives the restart");
        // Old credentials are refused, new ones work and refresh consent.
        assert!(send(&mut ice, Req::default(), src, t0).0.is_err());
        let new = Req { user: "newU:brw2", pwd: "new-password-0123456789", ..Req::default() };
        assert!(send(&mut ice, Req { user: "newU:brws", ..new }, src, t0).0.is_err(), "old remote ufrag");
        send(&mut ice, new, src, t0 + Duration::from_secs(20)).0.unwrap();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(45)));
    }

    #[test]
    fn consent_expiry() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("198.51.100.1:1000");
        let t0 = Instant::now();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(100)), "no path yet");
        send(&mut ice, Req { use_candidate: true, ..Req::default() }, src, t0).0.unwrap();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(29)));
        assert!(ice.consent_expired(t0 + Duration::from_secs(30)));
        send(&mut ice, Req::default(), src, t0 + Duration::from_secs(20)).0.unwrap();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(45)));
        assert!(ice.consent_expired(t0 + Duration::from_secs(50)));
        // Checks on another path do not refresh the nominated one.
        send(&mut ice, Req::default(), addr("198.51.100.9:9"), t0 + Duration::from_secs(49)).0.unwrap();
        assert!(ice.consent_expired(t0 + Duration::from_secs(50)));
        // A time before the last check (clock handed in out of order) is not expiry.
        assert!(!ice.consent_expired(t0));
    }

    #[test]
    fn indications_and_other_messages() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("198.51.100.1:1000");
        let mut b = [0u8; 64];
        let mut out = [0u8; 64];
        let n = MessageWriter::new(&mut b, Class::Indication, method::BINDING, &[0; 12]).unwrap().finish();
        let r = ice.handle_stun(&Message::parse(&b[..n]).unwrap(), src, Instant::now(), &mut out).unwrap();
        assert_eq!(r, IceReply::default());
        assert!(!ice.knows(src));

        let n = MessageWriter::new(&mut b, Class::Success, method::BINDING, &[0; 12]).unwrap().finish();
        let r = ice.handle_stun(&Message::parse(&b[..n]).unwrap(), src, Instant::now(), &mut out);
        assert_eq!(r, Err(IceError::UnexpectedClass(Class::Success)));

        let n = MessageWriter::new(&mut b, Class::Request, method::ALLOCATE, &[0; 12]).unwrap().finish();
        let r = ice.handle_stun(&Message::parse(&b[..n]).unwrap(), src, Instant::now(), &mut out);
        assert_eq!(r, Err(IceError::NotBinding));
    }

    #[test]
    fn small_output_buffer_changes_nothing() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let src = addr("198.51.100.1:1000");
        let raw = build(Req { use_candidate: true, ..Req::default() });
        let msg = Message::parse(&raw).unwrap();
        let mut out = [0u8; 40];
        let r = ice.handle_stun(&msg, src, Instant::now(), &mut out);
        assert_eq!(r, Err(IceError::Encode(StunError::BufferTooSmall)));
        assert!(!ice.knows(src));
        assert_eq!(ice.selected(), None);
    }

    #[test]
    fn eviction_keeps_nominated() {
        let mut ice = IceLite::new(UFRAG, PWD);
        let t0 = Instant::now();
        let at = |i: u64| t0 + Duration::from_secs(i);
        let p = |i: u16| SocketAddr::from(([10, 0, 0, 1], 1000 + i));
        send(&mut ice, Req { use_candidate: true, ..Req::default() }, p(0), at(0)).0.unwrap();
        for i in 1..=8 {
            send(&mut ice, Req::default(), p(i), at(u64::from(i))).0.unwrap();
        }
        assert!(ice.knows(p(0)), "nominated survives");
        assert!(!ice.knows(p(1)), "stalest non-nominated evicted");
        assert!((2..=8).all(|i| ice.knows(p(i))));
        assert_eq!(ice.selected(), Some(p(0)));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..160), port: u16) {
            let mut ice = IceLite::new(UFRAG, PWD);
            let mut out = [0u8; 128];
            if let Ok(msg) = Message::parse(&buf) {
                let _ = ice.handle_stun(&msg, SocketAddr::from(([1, 2, 3, 4], port)), Instant::now(), &mut out);
            }
        }

        #[test]
        fn mutated_requests_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
            out_len in 0usize..128,
        ) {
            let mut ice = IceLite::new(UFRAG, PWD);
            let mut raw = build(Req { use_candidate: true, ..Req::default() });
            for (i, x) in flips {
                let i = i.index(raw.len());
                raw[i] ^= x;
            }
            raw.truncate(cut.index(raw.len() + 1).max(raw.len() / 2));
            let mut out = vec![0u8; out_len];
            if let Ok(msg) = Message::parse(&raw) {
                let _ = ice.handle_stun(&msg, SocketAddr::from(([1, 2, 3, 4], 5)), Instant::now(), &mut out);
            }
        }
    }
}
