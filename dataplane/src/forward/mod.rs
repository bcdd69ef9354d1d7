//! Forwarding logic: uptracks (publisher side) and downtracks (subscriber side).
pub mod downtrack;
pub mod uptrack;

pub use downtrack::Downtrack;
pub use uptrack::Uptrack;
