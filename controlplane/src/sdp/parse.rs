//! SDP text to model (RFC 8866 §5, §9). Strict about structure, lenient about
//! line endings and surrounding whitespace, bounded in size because the input
//! comes straight from an HTTP body.

use super::error::SdpError;
use super::model::{Attribute, MediaDescription, SessionDescription};

/// Real browser offers are 3 to 10 KiB; anything far larger is abuse.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// More m-lines than this is no real client.
pub const MAX_MEDIA_SECTIONS: usize = 64;

impl SessionDescription {
    /// Parses an SDP with CRLF or LF line endings.
    pub fn parse(s: &str) -> Result<Self, SdpError> {
        if s.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge {
                size: s.len(),
                max: MAX_SDP_BYTES,
            });
        }
        let mut lines = s
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());

        let (n, first) = lines.next().ok_or(SdpError::Empty)?;
        match split_line(n, first)? {
            ('v', "0") => {}
            ('v', other) => return Err(SdpError::BadVersion(other.to_owned())),
            _ => return Err(SdpError::MissingVersion),
        }
        let (n, second) = lines.next().ok_or(SdpError::MissingOrigin)?;
        let origin = match split_line(n, second)? {
            ('o', v) => parse_origin(n, v)?,
            _ => return Err(SdpError::MissingOrigin),
        };

        let mut sd = SessionDescription {
            origin,
            session_name: "-".to_owned(),
            connection: None,
            timing: "0 0".to_owned(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut seen_timing = false;
        for (n, line) in lines {
            let (kind, value) = split_line(n, line)?;
            let in_media = !sd.media.is_empty();
            match kind {
                'm' => {
                    if sd.media.len() >= MAX_MEDIA_SECTIONS {
                        return Err(SdpError::TooManyMedia {
                            max: MAX_MEDIA_SECTIONS,
                        });
                    }
                    sd.media.push(parse_media(n, value)?);
                }
                'a' => {
                    let attr = parse_attribute(n, value)?;
                    match sd.media.last_mut() {
                        Some(m) => m.attributes.push(attr),
                        None => sd.attributes.push(attr),
                    }
                }
                'c' => {
                    check_connection(n, value)?;
                    let slot = match sd.media.last_mut() {
                        Some(m) => &mut m.connection,
                        None => &mut sd.connection,
                    };
                    // Several c= lines only occur with multicast; the first is enough for us.
                    if slot.is_none() {
                        *slot = Some(value.to_owned());
                    }
                }
                's' if !in_media => {
                    if !value.is_empty() {
                        sd.session_name = value.to_owned();
                    }
                }
                't' if !in_media => {
                    if !seen_timing {
                        seen_timing = true;
                        sd.timing = value.to_owned();
                    }
                }
                'v' | 'o' | 's' | 't' => {
                    return Err(bad(n, format!("a {kind}= line is not allowed here")));
                }
                'i' | 'u' | 'e' | 'p' | 'b' | 'r' | 'z' | 'k' => {}
                other => {
                    return Err(SdpError::UnknownLineType {
                        line: n,
                        kind: other,
                    })
                }
            }
        }
        if sd.media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        Ok(sd)
    }
}

fn bad(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::BadLine {
        line,
        reason: reason.into(),
    }
}

/// Splits `x=value`, rejecting control characters so that no value can smuggle
/// a line break into an SDP we write back out.
fn split_line(n: usize, line: &str) -> Result<(char, &str), SdpError> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(n, "the line contains a control character"));
    }
    let mut chars = line.chars();
    let kind = chars.next().unwrap_or(' ');
    if !kind.is_ascii_lowercase() || chars.next() != Some('=') {
        return Err(bad(
            n,
            format!("expected \"<letter>=<value>\", found \"{}\"", excerpt(line)),
        ));
    }
    // Both checked characters are ASCII, so byte 2 is a char boundary.
    Ok((kind, line.get(2..).unwrap_or("")))
}

fn excerpt(line: &str) -> String {
    line.chars().take(40).collect()
}

fn parse_origin(n: usize, v: &str) -> Result<String, SdpError> {
    if v.split_whitespace().count() != 6 {
        return Err(bad(
            n,
            "the o= line needs 6 fields: <username> <sess-id> <sess-version> <nettype> <addrtype> <address>",
        ));
    }
    Ok(v.to_owned())
}

fn check_connection(n: usize, v: &str) -> Result<(), SdpError> {
    let fields: Vec<&str> = v.split_whitespace().collect();
    match fields.as_slice() {
        ["IN", "IP4" | "IP6", _addr] => Ok(()),
        _ => Err(bad(
            n,
            format!(
                "the c= line must be \"IN IP4|IP6 <address>\", found \"{}\"",
                excerpt(v)
            ),
        )),
    }
}

fn parse_media(n: usize, v: &str) -> Result<MediaDescription, SdpError> {
    let mut fields = v.split_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad(
            n,
            "the m= line needs \"<media> <port> <proto> <format>...\"",
        ));
    };
    let port: u16 = port.parse().map_err(|_| SdpError::BadPort {
        line: n,
        value: excerpt(port),
    })?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(bad(n, "the m= line lists no formats"));
    }
    if proto.contains("RTP/") {
        if let Some(f) = formats
            .iter()
            .find(|f| f.parse::<u8>().map_or(true, |pt| pt > 127))
        {
            return Err(bad(
                n,
                format!("\"{}\" is not an RTP payload type (0 to 127)", excerpt(f)),
            ));
        }
    }
    Ok(MediaDescription {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        attributes: Vec::new(),
    })
}

fn parse_attribute(n: usize, v: &str) -> Result<Attribute, SdpError> {
    let (key, value) = match v.split_once(':') {
        Some((k, val)) => (k, Some(val.to_owned())),
        None => (v, None),
    };
    if key.is_empty() || !key.bytes().all(is_token_byte) {
        return Err(bad(
            n,
            format!("\"{}\" is not a valid attribute name", excerpt(key)),
        ));
    }
    Ok(Attribute {
        key: key.to_owned(),
        value,
    })
}

/// RFC 8866 `token-char`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn parses_minimal_crlf_and_lf_alike() {
        let crlf = SessionDescription::parse(MINIMAL).unwrap();
        let lf = SessionDescription::parse(&MINIMAL.replace("\r\n", "\n")).unwrap();
        assert_eq!(crlf, lf);
        assert_eq!(crlf.origin, "- 1 2 IN IP4 127.0.0.1");
        assert_eq!(
            crlf.attributes,
            vec![Attribute::with_value("group", "BUNDLE 0")]
        );
        let m = &crlf.media[0];
        assert_eq!(
            (m.kind.as_str(), m.port, m.proto.as_str()),
            ("audio", 9, "UDP/TLS/RTP/SAVPF")
        );
        assert_eq!(m.formats, vec!["111"]);
        assert_eq!(m.connection.as_deref(), Some("IN IP4 0.0.0.0"));
        assert_eq!(m.attributes[1], Attribute::flag("rtcp-mux"));
    }

    #[test]
    fn empty_value_differs_from_flag() {
        let sd = SessionDescription::parse(&format!("{MINIMAL}a=x:\r\na=y\r\n")).unwrap();
        let attrs = &sd.media[0].attributes;
        assert_eq!(attrs[attrs.len() - 2], Attribute::with_value("x", ""));
        assert_eq!(attrs[attrs.len() - 1], Attribute::flag("y"));
    }

    #[test]
    fn structure_errors() {
        assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
        assert_eq!(SessionDescription::parse("\r\n\n"), Err(SdpError::Empty));
        assert_eq!(
            SessionDescription::parse("o=- 1 2 IN IP4 1.1.1.1\r\n"),
            Err(SdpError::MissingVersion)
        );
        assert_eq!(
            SessionDescription::parse("v=1\r\n"),
            Err(SdpError::BadVersion("1".into()))
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\ns=-\r\n"),
            Err(SdpError::MissingOrigin)
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\n"),
            Err(SdpError::NoMedia)
        );
        assert!(matches!(
            SessionDescription::parse("v=0\r\no=- 1 2 IN\r\nm=audio 9 RTP/AVP 0\r\n"),
            Err(SdpError::BadLine { line: 2, .. })
        ));
    }

    #[test]
    fn bad_ports_and_formats() {
        for port in ["65536", "-1", "abc", "9/2", ""] {
            let sdp = MINIMAL.replace("m=audio 9 ", &format!("m=audio {port} "));
            let err = SessionDescription::parse(&sdp).unwrap_err();
            assert!(
                matches!(err, SdpError::BadPort { .. } | SdpError::BadLine { .. }),
                "{port}: {err}"
            );
        }
        let sdp = MINIMAL.replace("SAVPF 111", "SAVPF 128");
        assert!(SessionDescription::parse(&sdp)
            .unwrap_err()
            .to_string()
            .contains("payload type"));
        let sdp = MINIMAL.replace("SAVPF 111", "SAVPF");
        assert!(SessionDescription::parse(&sdp).is_err());
    }

    #[test]
    fn rejects_bad_lines() {
        for extra in [
            "x=1",
            "a=",
            "a=bad key:1",
            "garbage",
            "a=ok\u{0}",
            "c=IN IP4",
            "s=again",
        ] {
            let sdp = format!("{MINIMAL}{extra}\r\n");
            let err = SessionDescription::parse(&sdp).unwrap_err();
            assert!(!err.to_string().is_empty(), "{extra}");
        }
    }

    #[test]
    fn size_limits() {
        let huge = format!(
            "{MINIMAL}{}",
            "a=x:yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(2000)
        );
        assert!(matches!(
            SessionDescription::parse(&huge),
            Err(SdpError::TooLarge { .. })
        ));
        let many = format!(
            "{MINIMAL}{}",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n".repeat(64)
        );
        assert_eq!(
            SessionDescription::parse(&many),
            Err(SdpError::TooManyMedia { max: 64 })
        );
    }

    #[test]
    fn ignores_unused_line_types() {
        let sdp = MINIMAL.replace("t=0 0\r\n", "i=info\r\nb=AS:30\r\nt=0 0\r\nr=1 2 3\r\n");
        assert_eq!(
            SessionDescription::parse(&sdp).unwrap(),
            SessionDescription::parse(MINIMAL).unwrap()
        );
    }
}
