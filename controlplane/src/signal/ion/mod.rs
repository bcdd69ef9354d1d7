//! The ion-sfu signaling adapter: JSON-RPC 2.0 over WebSocket, compatible
//! with ion-sfu and ion-sdk-js (docs/jsonrpc.md). `rpc` is the wire format,
//! `ws` one connection = at most one participant. What a participant does
//! in its room is decided by the rooms core (`crate::room`).

pub mod rpc;
mod ws;

pub use ws::{serve_relayed, ws_handler};
