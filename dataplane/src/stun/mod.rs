//! Sans-IO STUN codec (RFC 5389 / RFC 8489).
//!
//! Parsing borrows the datagram and never allocates; writing goes into a
//! caller-provided buffer. The codec knows nothing about ICE or TURN so that
//! both the dataplane's ICE-lite agent and the controlplane's TURN server can
//! share it.

mod consts;
mod error;
mod integrity;
mod message;
mod msg_type;
mod writer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod rfc5769;

pub use consts::{attr, method, FINGERPRINT_XOR, HEADER_LEN, MAGIC_COOKIE};
pub use error::StunError;
pub use integrity::IntegrityKey;
pub use message::{is_stun, local_ufrag, Attrs, Message};
pub use msg_type::Class;
pub use writer::MessageWriter;
