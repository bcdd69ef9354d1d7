//! The room model, protocol-neutral and sans-IO: rooms, their participants,
//! tracks and subscriptions. Signaling adapters (`crate::signal`, WHIP/WHEP
//! in `crate::http`) and the hub feed it; it never does I/O.

pub mod speakers;
