//! The WHIP/WHEP request checks in front of the SDP parser: content type,
//! size limit, empty and non-UTF-8 bodies, and room names from the URL.
#![no_main]

use controlplane::http::{parse_offer_request, validate_room};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: the Content-Type header value; second: the room; the rest: the body.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let ct = parts.next();
    let room = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    if let Ok(room) = std::str::from_utf8(room) {
        let _ = validate_room(room);
    }
    let max_body = 4096;
    let r = parse_offer_request(ct, body, max_body);
    if body.len() > max_body {
        assert!(r.is_err(), "the size limit holds");
    }
    let _ = parse_offer_request(Some(b"application/sdp"), body, max_body);
});
