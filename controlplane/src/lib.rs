//! sfud controlplane: rooms, participants, signaling, DTLS and configuration.
//! It drives the dataplane through typed commands and never touches a packet
//! on the hot path.

pub mod app;
pub mod auth;
pub mod candidates;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod contain;
pub mod datachannel;
pub mod dtls;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod room;
pub mod sdp;
pub mod transport;
pub mod signal;
pub mod sdnotify;
pub mod tune;
pub mod turn;
pub mod webhook;
