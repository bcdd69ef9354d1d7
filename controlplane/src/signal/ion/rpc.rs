//! JSON-RPC 2.0 framing as ion-sdk-js speaks it. ion-sdk-js omits the
//! `"jsonrpc"` member and uses string ids, so both are accepted; what it
//! receives back is always proper JSON-RPC 2.0.

use serde::Deserialize;
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined errors (-32000..-32099).
pub const ALREADY_JOINED: i64 = -32001;
pub const NOT_JOINED: i64 = -32002;
pub const ROOM_FULL: i64 = -32003;
pub const REFUSED: i64 = -32004;
pub const UNAUTHORIZED: i64 = -32005;
/// A `[limits]` key refused the request (capacity or per-client quota).
pub const LIMIT: i64 = -32006;

#[derive(Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    pub fn params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// A call (with an id) or a notification (without one).
#[derive(Debug, PartialEq)]
pub struct Incoming {
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// Parses one WebSocket text frame. On error, also returns the id to answer
/// with (null when the frame was not even JSON).
pub fn parse(text: &str) -> Result<Incoming, (Value, RpcError)> {
    let v: Value = serde_json::from_str(text).map_err(|e| (Value::Null, RpcError::new(PARSE_ERROR, format!("parse error: {e}"))))?;
    let Value::Object(mut obj) = v else {
        return Err((Value::Null, RpcError::new(INVALID_REQUEST, "a request must be a JSON object")));
    };
    let id = obj.remove("id");
    let id_for_error = id.clone().unwrap_or(Value::Null);
    if let Some(ver) = obj.get("jsonrpc") {
        if ver != "2.0" {
            return Err((id_for_error, RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")));
        }
    }
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err((Value::Null, RpcError::new(INVALID_REQUEST, "id must be a string or a number")));
        }
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err((id_for_error, RpcError::new(INVALID_REQUEST, "method must be a string"))),
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    Ok(Incoming { id, method, params })
}

pub fn result(id: &Value, result: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string()
}

pub fn error(id: &Value, e: &RpcError) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": e.code, "message": e.message } }).to_string()
}

pub fn notification(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
}

/// `{type, sdp}` as RTCSessionDescriptionInit.
#[derive(Debug, Deserialize)]
pub struct Description {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// ion-sfu's JoinConfig. Go matched these field names case-insensitively,
/// so both `NoPublish` and `noPublish` are accepted.
#[derive(Debug, Default, Deserialize, Clone, Copy)]
pub struct JoinConfig {
    #[serde(rename = "NoPublish", alias = "noPublish", alias = "nopublish", default)]
    pub no_publish: bool,
    #[serde(rename = "NoSubscribe", alias = "noSubscribe", alias = "nosubscribe", default)]
    pub no_subscribe: bool,
    #[serde(rename = "NoAutoSubscribe", alias = "noAutoSubscribe", alias = "noautosubscribe", default)]
    pub no_auto_subscribe: bool,
}

#[derive(Debug, Deserialize)]
pub struct JoinParams {
    pub sid: String,
    pub uid: String,
    pub offer: Description,
    #[serde(default)]
    pub config: Option<JoinConfig>,
    /// sfud extension: an access token when auth is on (ion-sdk-js passes it in the URL instead).
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DescParams {
    pub desc: Description,
}

#[derive(Debug, Deserialize)]
pub struct TrickleParams {
    pub candidate: Value,
    pub target: u8,
}

/// Typed params, or -32602 with serde's reason.
pub fn params<T: serde::de::DeserializeOwned>(method: &str, v: Value) -> Result<T, RpcError> {
    serde_json::from_value(v).map_err(|e| RpcError::params(format!("invalid params for {method}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ion_style_requests_without_jsonrpc() {
        let r = parse(r#"{"method":"join","params":{"sid":"r","uid":"u","offer":{"type":"offer","sdp":"v=0"}},"id":"abc"}"#).unwrap();
        assert_eq!(r.method, "join");
        assert_eq!(r.id, Some(json!("abc")));
        let p: JoinParams = params("join", r.params).unwrap();
        assert_eq!((p.sid.as_str(), p.uid.as_str(), p.offer.kind.as_str()), ("r", "u", "offer"));
        let n = parse(r#"{"jsonrpc":"2.0","method":"trickle","params":{"target":1,"candidate":{"candidate":"x"}}}"#).unwrap();
        assert_eq!(n.id, None);
    }

    #[test]
    fn join_config_both_spellings() {
        let p: JoinParams = params("join", json!({"sid":"r","uid":"u","offer":{"type":"offer","sdp":""},"config":{"noPublish":true,"NoSubscribe":true}})).unwrap();
        let c = p.config.unwrap();
        assert!(c.no_publish && c.no_subscribe && !c.no_auto_subscribe);
    }

    #[test]
    fn error_codes() {
        assert_eq!(parse("{nope").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse("[1,2]").unwrap_err().1.code, INVALID_REQUEST);
        assert_eq!(parse(r#"{"id":1}"#).unwrap_err().1.code, INVALID_REQUEST);
        assert_eq!(parse(r#"{"id":1,"method":"x","jsonrpc":"1.0"}"#).unwrap_err().1.code, INVALID_REQUEST);
        let bad = params::<JoinParams>("join", json!({"sid": 5})).unwrap_err();
        assert_eq!(bad.code, INVALID_PARAMS);
        assert!(bad.message.contains("join"));
    }

    #[test]
    fn responses_are_jsonrpc_2() {
        let v: Value = serde_json::from_str(&error(&json!(7), &RpcError::new(METHOD_NOT_FOUND, "no"))).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(v["id"], 7);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn json_shaped_input_never_panics(method in "[a-z]{0,8}", id in proptest::option::of(0i64..1000), p in ".{0,60}") {
            let text = match id {
                Some(id) => format!(r#"{{"id":{id},"method":"{method}","params":{p}}}"#),
                None => format!(r#"{{"method":"{method}","params":{p}}}"#),
            };
            if let Ok(r) = parse(&text) {
                let _ = params::<JoinParams>("join", r.params.clone());
                let _ = params::<DescParams>("offer", r.params.clone());
                let _ = params::<TrickleParams>("trickle", r.params);
            }
        }
    }
}
