//! Signaling adapters: how clients of each protocol ask for what the rooms
//! core (`crate::room`) models. Only ion-sfu's JSON-RPC lives here so far;
//! WHIP/WHEP's HTTP routing is in `crate::http`.

pub mod ion;
