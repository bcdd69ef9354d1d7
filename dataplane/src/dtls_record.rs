//! DTLS record-header parsing for the shard's demux (RFC 6347 section 4.1).
//!
//! The shard never decrypts DTLS: it only checks that a datagram is made of
//! well-formed DTLS records before handing it to the controlplane, so junk
//! that merely starts with a byte in 20..=63 (RFC 7983) costs one bounds check
//! here instead of a channel hop and an openssl call. Nothing here allocates.

use thiserror::Error;

/// Bytes in a DTLS 1.0/1.2 record header: type, version, epoch, 48-bit sequence, length.
pub const HEADER_LEN: usize = 13;

/// Largest record length a DTLS 1.2 peer may send (2^14 plaintext + 2048 expansion).
pub const MAX_RECORD_LEN: u16 = 16384 + 2048;

/// DTLS 1.0 record version: still used on ClientHello records by some stacks.
pub const VERSION_DTLS_1_0: u16 = 0xFEFF;
/// DTLS 1.2 record version.
pub const VERSION_DTLS_1_2: u16 = 0xFEFD;

pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;
pub const CONTENT_HEARTBEAT: u8 = 24;
/// RFC 9146. sfud never negotiates connection ids, so such a record is parsed
/// with the plain layout and left for openssl to refuse.
pub const CONTENT_TLS12_CID: u8 = 25;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub epoch: u16,
    /// 48-bit record sequence number.
    pub sequence: u64,
    pub length: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtlsRecordError {
    #[error("datagram holds no DTLS record")]
    Empty,
    #[error("truncated DTLS record header: {available} of {HEADER_LEN} bytes")]
    TruncatedHeader { available: usize },
    #[error("truncated DTLS record body: length {declared}, {available} bytes left")]
    TruncatedBody { declared: u16, available: usize },
    #[error("unknown DTLS content type {0}")]
    ContentType(u8),
    #[error("unknown DTLS record version {0:#06x}")]
    Version(u16),
    #[error("DTLS record length {0} exceeds the protocol maximum")]
    TooLong(u16),
}

/// Iterator over the records of one datagram; yields at most one error, then stops.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Splits a datagram into records, checking only the framing (header present,
/// body within the datagram). Field values are not judged here; see
/// [`validate_datagram`].
pub fn records(datagram: &[u8]) -> Records<'_> {
    Records {
        rest: datagram,
        failed: false,
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(RecordHeader, &'a [u8]), DtlsRecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match split_record(self.rest) {
            Ok((header, fragment, rest)) => {
                self.rest = rest;
                Some(Ok((header, fragment)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn split_record(buf: &[u8]) -> Result<(RecordHeader, &[u8], &[u8]), DtlsRecordError> {
    let Some((head, body)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(DtlsRecordError::TruncatedHeader {
            available: buf.len(),
        });
    };
    let [content_type, v0, v1, e0, e1, s0, s1, s2, s3, s4, s5, l0, l1] = *head;
    let header = RecordHeader {
        content_type,
        version: u16::from_be_bytes([v0, v1]),
        epoch: u16::from_be_bytes([e0, e1]),
        sequence: u64::from_be_bytes([0, 0, s0, s1, s2, s3, s4, s5]),
        length: u16::from_be_bytes([l0, l1]),
    };
    let len = usize::from(header.length);
    if body.len() < len {
        return Err(DtlsRecordError::TruncatedBody {
            declared: header.length,
            available: body.len(),
        });
    }
    let (fragment, rest) = body.split_at(len);
    Ok((header, fragment, rest))
}

/// Checks every record of a datagram and returns how many there are.
pub fn validate_datagram(datagram: &[u8]) -> Result<usize, DtlsRecordError> {
    let mut count = 0usize;
    for record in records(datagram) {
        let (header, _) = record?;
        if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_TLS12_CID).contains(&header.content_type) {
            return Err(DtlsRecordError::ContentType(header.content_type));
        }
        if header.version != VERSION_DTLS_1_0 && header.version != VERSION_DTLS_1_2 {
            return Err(DtlsRecordError::Version(header.version));
        }
        if header.length > MAX_RECORD_LEN {
            return Err(DtlsRecordError::TooLong(header.length));
        }
        count += 1;
    }
    if count == 0 {
        return Err(DtlsRecordError::Empty);
    }
    Ok(count)
}

/// True when the first record opens a ClientHello: the only DTLS message that
/// may legitimately start a new handshake (and so a new controlplane session).
pub fn is_client_hello(datagram: &[u8]) -> bool {
    match records(datagram).next() {
        Some(Ok((header, fragment))) => {
            header.content_type == CONTENT_HANDSHAKE
                && header.epoch == 0
                && (header.version == VERSION_DTLS_1_0 || header.version == VERSION_DTLS_1_2)
                && fragment.first() == Some(&HANDSHAKE_CLIENT_HELLO)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(content_type: u8, version: u16, epoch: u16, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![content_type];
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes()[2..]);
        out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn parses_single_record_fields() {
        let dg = record(22, VERSION_DTLS_1_2, 1, 0x0102_0304_0506, &[1, 2, 3]);
        let mut it = records(&dg);
        let (h, frag) = it.next().unwrap().unwrap();
        assert_eq!(
            h,
            RecordHeader {
                content_type: 22,
                version: 0xFEFD,
                epoch: 1,
                sequence: 0x0102_0304_0506,
                length: 3
            }
        );
        assert_eq!(frag, &[1, 2, 3]);
        assert!(it.next().is_none());
        assert_eq!(validate_datagram(&dg), Ok(1));
    }

    #[test]
    fn max_sequence_is_48_bits() {
        let dg = record(23, VERSION_DTLS_1_2, 0xFFFF, 0xFFFF_FFFF_FFFF, &[]);
        let (h, frag) = records(&dg).next().unwrap().unwrap();
        assert_eq!(h.sequence, 0xFFFF_FFFF_FFFF);
        assert_eq!(h.epoch, 0xFFFF);
        assert!(frag.is_empty());
    }

    #[test]
    fn multi_record_datagram() {
        // A typical final flight: ChangeCipherSpec then an encrypted Finished.
        let mut dg = record(20, VERSION_DTLS_1_2, 0, 7, &[1]);
        dg.extend(record(22, VERSION_DTLS_1_2, 1, 0, &[0xAA; 40]));
        dg.extend(record(21, VERSION_DTLS_1_2, 1, 1, &[2, 40]));
        let parsed: Vec<_> = records(&dg).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].0.content_type, 20);
        assert_eq!(parsed[1].1.len(), 40);
        assert_eq!(parsed[2].1, &[2, 40]);
        assert_eq!(validate_datagram(&dg), Ok(3));
    }

    #[test]
    fn truncated_header() {
        let dg = record(22, VERSION_DTLS_1_2, 0, 0, &[1, 2]);
        assert_eq!(
            validate_datagram(&dg[..5]),
            Err(DtlsRecordError::TruncatedHeader { available: 5 })
        );
        // A good record followed by a partial header.
        let mut two = dg.clone();
        two.extend_from_slice(&dg[..12]);
        let mut it = records(&two);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(DtlsRecordError::TruncatedHeader { available: 12 }))
        );
        assert!(it.next().is_none());
        assert!(validate_datagram(&two).is_err());
    }

    #[test]
    fn truncated_body() {
        let dg = record(23, VERSION_DTLS_1_2, 1, 0, &[9; 10]);
        assert_eq!(
            validate_datagram(&dg[..HEADER_LEN + 4]),
            Err(DtlsRecordError::TruncatedBody {
                declared: 10,
                available: 4
            })
        );
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(validate_datagram(&[]), Err(DtlsRecordError::Empty));
        assert_eq!(
            validate_datagram(&record(19, VERSION_DTLS_1_2, 0, 0, &[])),
            Err(DtlsRecordError::ContentType(19))
        );
        assert_eq!(
            validate_datagram(&record(26, VERSION_DTLS_1_2, 0, 0, &[])),
            Err(DtlsRecordError::ContentType(26))
        );
        assert_eq!(
            validate_datagram(&record(22, 0x0303, 0, 0, &[])),
            Err(DtlsRecordError::Version(0x0303))
        );
        assert_eq!(
            validate_datagram(&record(22, VERSION_DTLS_1_0, 0, 0, &[1])),
            Ok(1)
        );
        for ct in 20..=25 {
            assert_eq!(
                validate_datagram(&record(ct, VERSION_DTLS_1_2, 0, 0, &[])),
                Ok(1)
            );
        }
        let big = vec![0u8; usize::from(MAX_RECORD_LEN) + 1];
        assert_eq!(
            validate_datagram(&record(23, VERSION_DTLS_1_2, 1, 0, &big)),
            Err(DtlsRecordError::TooLong(MAX_RECORD_LEN + 1))
        );
    }

    #[test]
    fn client_hello_detection() {
        let hello = record(22, VERSION_DTLS_1_0, 0, 0, &[1, 0, 0, 0x2c]);
        assert!(is_client_hello(&hello));
        assert!(!is_client_hello(&record(22, VERSION_DTLS_1_2, 1, 0, &[1])));
        assert!(!is_client_hello(&record(22, VERSION_DTLS_1_2, 0, 0, &[2])));
        assert!(!is_client_hello(&record(23, VERSION_DTLS_1_2, 0, 0, &[1])));
        assert!(!is_client_hello(&record(22, VERSION_DTLS_1_2, 0, 0, &[])));
        assert!(!is_client_hello(&record(22, 0x0303, 0, 0, &[1])));
        assert!(!is_client_hello(&hello[..HEADER_LEN + 1 - 1]));
        assert!(!is_client_hello(&[]));
    }

    proptest! {
        #[test]
        fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = validate_datagram(&data);
            let _ = is_client_hello(&data);
            // Every item consumes at least a header, or ends the iteration.
            let n = records(&data).count();
            prop_assert!(n <= data.len() / HEADER_LEN + 1);
            let errors = records(&data).filter(|r| r.is_err()).count();
            prop_assert!(errors <= 1);
        }

        #[test]
        fn well_formed_records_round_trip(
            recs in proptest::collection::vec(
                (20u8..=25, any::<u16>(), 0u64..(1 << 48), proptest::collection::vec(any::<u8>(), 0..64)),
                1..6,
            )
        ) {
            let mut dg = Vec::new();
            for (ct, epoch, seq, body) in &recs {
                dg.extend(record(*ct, VERSION_DTLS_1_2, *epoch, *seq, body));
            }
            prop_assert_eq!(validate_datagram(&dg), Ok(recs.len()));
            for (parsed, (ct, epoch, seq, body)) in records(&dg).zip(&recs) {
                let (h, frag) = parsed.unwrap();
                prop_assert_eq!(h.content_type, *ct);
                prop_assert_eq!(h.epoch, *epoch);
                prop_assert_eq!(h.sequence, *seq);
                prop_assert_eq!(frag, &body[..]);
            }
            // Any cut inside the last record must be reported, not skipped.
            if dg.len() > 1 {
                prop_assert!(validate_datagram(&dg[..dg.len() - 1]).is_err());
            }
        }
    }
}
