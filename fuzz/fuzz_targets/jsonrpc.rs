//! ion-sfu JSON-RPC frames (docs/jsonrpc.md) as a rooms WebSocket reads
//! them: the envelope, then the typed params of every method, and the
//! error reply built from whatever id came in.
#![no_main]

use controlplane::signal::ion::rpc::{self, DescParams, JoinParams, TrickleParams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match rpc::parse(text) {
        Ok(msg) => {
            let id = msg.id.clone().unwrap_or_default();
            let params = msg.params.clone();
            let r = match msg.method.as_str() {
                "join" => rpc::params::<JoinParams>("join", params).err(),
                "offer" | "answer" => rpc::params::<DescParams>("offer", params).err(),
                "trickle" => rpc::params::<TrickleParams>("trickle", params).err(),
                _ => None,
            };
            // Also each type against any params, whatever the method.
            let _ = rpc::params::<JoinParams>("join", msg.params.clone());
            let _ = rpc::params::<TrickleParams>("trickle", msg.params);
            if let Some(e) = r {
                let reply = rpc::error(&id, &e);
                serde_json::from_str::<serde_json::Value>(&reply).expect("our error reply is JSON");
            }
        }
        Err((id, e)) => {
            let reply = rpc::error(&id, &e);
            serde_json::from_str::<serde_json::Value>(&reply).expect("our error reply is JSON");
        }
    }
});
