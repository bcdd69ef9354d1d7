//! Rooms over WebSocket JSON-RPC, compatible with ion-sfu and ion-sdk-js
//! (docs/jsonrpc.md). The room logic itself lives in `hub::rooms`.

pub mod rpc;
pub mod speakers;
mod ws;

pub use ws::{serve_relayed, ws_handler};
