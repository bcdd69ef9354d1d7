//! Model to SDP text, in RFC 8866 §5 line order, CRLF-terminated.

use std::fmt::Write;

use super::model::{Attribute, MediaDescription, SessionDescription};

impl SessionDescription {
    pub fn to_sdp(&self) -> String {
        let mut out = String::with_capacity(1024 + 512 * self.media.len());
        // Writing into a String cannot fail, so the fmt results carry nothing.
        let _ = write!(out, "v=0\r\no={}\r\n", self.origin);
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        let _ = write!(out, "s={name}\r\n");
        if let Some(c) = &self.connection {
            let _ = write!(out, "c={c}\r\n");
        }
        let _ = write!(out, "t={}\r\n", self.timing);
        write_attributes(&mut out, &self.attributes);
        for m in &self.media {
            write_media(&mut out, m);
        }
        out
    }
}

fn write_media(out: &mut String, m: &MediaDescription) {
    let _ = write!(out, "m={} {} {}", m.kind, m.port, m.proto);
    for f in &m.formats {
        out.push(' ');
        out.push_str(f);
    }
    out.push_str("\r\n");
    if let Some(c) = &m.connection {
        let _ = write!(out, "c={c}\r\n");
    }
    write_attributes(out, &m.attributes);
}

fn write_attributes(out: &mut String, attrs: &[Attribute]) {
    for a in attrs {
        match &a.value {
            Some(v) => {
                let _ = write!(out, "a={}:{}\r\n", a.key, v);
            }
            None => {
                let _ = write!(out, "a={}\r\n", a.key);
            }
        }
    }
}
