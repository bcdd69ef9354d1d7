//! DTLS record framing (RFC 9147 §4) as the shard checks it before handing
//! a datagram to the controlplane, and ICE-TCP framing (RFC 4571/6544):
//! the reassembler, fed in arbitrary read sizes, must return exactly the
//! frames a plain reference decoder finds, and the send queue's output must
//! reassemble to what was queued.
#![no_main]

use dataplane::dtls_record;
use dataplane::shard::framing::{FrameReader, SendQueue, MAX_FRAME, PREFIX};
use libfuzzer_sys::fuzz_target;

/// The frames in `stream` up to the first bad length; and whether one was bad.
fn reference(mut stream: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut frames = Vec::new();
    while let [hi, lo, rest @ ..] = stream {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 || len > MAX_FRAME {
            return (frames, true);
        }
        let Some(frame) = rest.get(..len) else { break };
        frames.push(frame);
        stream = &rest[len..];
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    // DTLS: walk the records; validation agrees with the walk.
    let walked: Result<Vec<_>, _> = dtls_record::records(data).collect();
    let valid = dtls_record::validate_datagram(data);
    if let (Ok(records), Ok(n)) = (&walked, &valid) {
        assert_eq!(records.len(), *n);
    }
    let _ = dtls_record::is_client_hello(data);

    // ICE-TCP: the first byte picks the read size, the rest is the stream.
    let [step, stream @ ..] = data else { return };
    let step = usize::from(*step).max(1);
    let (expected, bad) = reference(stream);
    let mut reader = FrameReader::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    let mut fed = 0;
    'outer: while fed < stream.len() {
        let spare = reader.spare();
        assert!(!spare.is_empty(), "spare() is never empty between drained frames");
        let n = step.min(spare.len()).min(stream.len() - fed);
        spare[..n].copy_from_slice(&stream[fed..fed + n]);
        reader.filled(n);
        fed += n;
        loop {
            match reader.next_frame() {
                Ok(Some(f)) => got.push(reader.frame_mut(f).to_vec()),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(failed, bad);
    assert_eq!(got.len(), expected.len());
    assert!(got.iter().zip(&expected).all(|(a, b)| a == b));

    // The send side: what goes in comes out framed, whole frames only.
    let mut queue = SendQueue::new(PREFIX + MAX_FRAME);
    let mut queued = Vec::new();
    for frame in expected.iter().take(8) {
        if queue.push(frame) {
            queued.push(*frame);
        }
        assert!(queue.len() <= PREFIX + MAX_FRAME.max(queue.len()));
    }
    let mut out = Vec::new();
    while !queue.is_empty() {
        let take = step.min(queue.pending().len());
        out.extend_from_slice(&queue.pending()[..take]);
        queue.consume(take);
    }
    let (back, bad) = reference(&out);
    assert!(!bad);
    assert_eq!(back, queued);
});
