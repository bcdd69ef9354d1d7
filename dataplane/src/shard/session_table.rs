//! The shard's sessions, by id and by slot.
//!
//! The fan-out reaches hundreds of subscribers' sessions per packet. Found
//! through a hash map, each lookup stalls on the bucket it lands in, and no
//! prefetch can be issued for it before the lookup itself. Kept in numbered
//! slots, a session's address is known from its slot number alone, so the
//! fan-out can ask for its lines several subscribers ahead (`crate::prefetch`).
//! Downtracks remember their session's slot (`Downtrack::session_slot`); the
//! slot is a hint, always checked against the session id.

use std::collections::HashMap;

use crate::msg::SessionId;
use crate::shard::session::Session;

/// What a downtrack's slot hint holds before its session is known.
pub const NO_SLOT: u32 = u32::MAX;

#[derive(Default)]
pub struct SessionTable {
    /// Boxed: a session is several kilobytes, and a slot array of pointers
    /// stays small enough to be cache-resident while the sessions are not.
    slots: Vec<Option<Box<Session>>>,
    /// Vacant slots, reused before the array grows, so it never holds more
    /// slots than the most sessions this shard held at once.
    free: Vec<u32>,
    by_id: HashMap<SessionId, u32>,
}

impl SessionTable {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn contains_key(&self, sid: &SessionId) -> bool {
        self.by_id.contains_key(sid)
    }

    pub fn slot_of(&self, sid: &SessionId) -> Option<u32> {
        self.by_id.get(sid).copied()
    }

    pub fn get(&self, sid: &SessionId) -> Option<&Session> {
        let slot = *self.by_id.get(sid)?;
        self.slots[slot as usize].as_deref()
    }

    pub fn get_mut(&mut self, sid: &SessionId) -> Option<&mut Session> {
        let slot = *self.by_id.get(sid)?;
        self.slots[slot as usize].as_deref_mut()
    }

    /// `sid`'s session, through the slot hint `slot`, which is corrected
    /// if it went stale.
    #[inline]
    pub fn resolve(&mut self, slot: &mut u32, sid: SessionId) -> Option<&mut Session> {
        let hit = matches!(self.slots.get(*slot as usize), Some(Some(s)) if s.id == sid);
        if !hit {
            *slot = *self.by_id.get(&sid)?;
        }
        self.slots[*slot as usize].as_deref_mut()
    }

    /// The session in `slot`, whoever's it is (for prefetching only: the
    /// fan-out sends through `resolve`, which checks the id).
    #[inline]
    pub fn at(&self, slot: u32) -> Option<&Session> {
        self.slots.get(slot as usize)?.as_deref()
    }

    /// Adds or replaces `sid`'s session; returns its slot.
    pub fn insert(&mut self, sid: SessionId, session: Session) -> u32 {
        if let Some(&slot) = self.by_id.get(&sid) {
            self.slots[slot as usize] = Some(Box::new(session));
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(Box::new(session));
                slot
            }
            None => {
                self.slots.push(Some(Box::new(session)));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(sid, slot);
        slot
    }

    pub fn remove(&mut self, sid: &SessionId) -> Option<Session> {
        let slot = self.by_id.remove(sid)?;
        self.free.push(slot);
        self.slots[slot as usize].take().map(|b| *b)
    }

    pub fn keys(&self) -> impl Iterator<Item = &SessionId> {
        self.by_id.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Session> {
        self.slots.iter().filter_map(|s| s.as_deref())
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.slots.iter_mut().filter_map(|s| s.as_deref_mut())
    }
}

/// For tests, as a map's index: the shard itself never panics on a missing session.
#[cfg(test)]
impl std::ops::Index<&SessionId> for SessionTable {
    type Output = Session;

    fn index(&self, sid: &SessionId) -> &Session {
        self.get(sid).expect("no such session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ice::IceLite;
    use crate::shard::outbox::Dest;

    fn session(id: u64) -> Session {
        let ice = IceLite::new(&format!("u{id}"), &"p".repeat(22));
        Session::new(SessionId(id), ice, Dest::Udp("127.0.0.1:9".parse().unwrap()))
    }

    #[test]
    fn slots_are_reused_and_hints_checked() {
        let mut t = SessionTable::default();
        let a = t.insert(SessionId(1), session(1));
        let b = t.insert(SessionId(2), session(2));
        assert_ne!(a, b);
        assert!(t.remove(&SessionId(1)).is_some());
        let c = t.insert(SessionId(3), session(3));
        assert_eq!(c, a, "a vacant slot is reused before the array grows");
        // A stale hint (slot a now holds session 3) still finds session 1's
        // successor by id, and never hands out another session.
        let mut hint = a;
        assert!(t.resolve(&mut hint, SessionId(1)).is_none());
        assert_eq!(t.resolve(&mut hint, SessionId(3)).map(|s| s.id), Some(SessionId(3)));
        let mut hint = NO_SLOT;
        assert_eq!(t.resolve(&mut hint, SessionId(2)).map(|s| s.id), Some(SessionId(2)));
        assert_eq!(hint, b, "a missing hint is filled in");
        let mut hint = a;
        assert_eq!(t.resolve(&mut hint, SessionId(2)).map(|s| s.id), Some(SessionId(2)));
        assert_eq!(hint, b, "a stale hint is corrected");
        assert_eq!((t.len(), t.values().count()), (2, 2));
        assert!(t.at(NO_SLOT).is_none());
    }

    #[test]
    fn replacing_keeps_the_slot() {
        let mut t = SessionTable::default();
        let a = t.insert(SessionId(7), session(7));
        assert_eq!(t.insert(SessionId(7), session(7)), a);
        assert_eq!(t.len(), 1);
        assert!(t.remove(&SessionId(7)).is_some());
        assert!(t.remove(&SessionId(7)).is_none());
        assert!(t.is_empty());
    }
}
