//! Janus VideoRoom as the peer (filled in below).
use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::Engine;
use crate::sdp::Kind;
use crate::target::{Spawn, Target};

pub struct Janus;

impl Janus {
    pub fn start(_bin: &str, _conf: &Path, _preload: &str, _sp: &Spawn, _fp: String) -> Result<Self> {
        bail!("janus target not implemented yet")
    }
}

impl Target for Janus {
    fn name(&self) -> &'static str {
        "janus"
    }
    fn pid(&self) -> i32 {
        0
    }
    fn publish(&mut self, _: &mut Engine, _: &str, _: &[Kind]) -> Result<usize> {
        bail!("todo")
    }
    fn subscribe(&mut self, _: &mut Engine, _: &str, _: &[Kind]) -> Result<usize> {
        bail!("todo")
    }
    fn stop(&mut self) {}
}
