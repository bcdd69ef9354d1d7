//! Forwarding logic: uptracks (publisher side) and downtracks (subscriber
//! side), built from small sans-IO parts: packets, feedback and time in;
//! packets, feedback and the next deadline out.
pub mod allocator;
pub mod audio_level;
pub mod bwe;
pub mod dependency_descriptor;
pub mod downtrack;
pub mod extensions;
pub mod keyframe_requester;
pub mod layer_demand;
pub mod layer_selector;
pub mod nack_generator;
pub mod rate_meter;
pub mod red;
pub mod resend_budget;
pub mod resend_limiter;
pub mod retransmission_cache;
pub mod rid;
pub mod rtx;
pub mod seq_mapper;
pub mod simulcast;
pub mod svc_filter;
pub mod twcc_receiver;
pub mod uptrack;
pub mod vp8;
pub mod vp9;

pub use downtrack::Downtrack;
pub use uptrack::Uptrack;
