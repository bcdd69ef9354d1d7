//! Deliberate packet loss: which packets a session pretends the network
//! lost. A seeded xorshift64* keeps runs repeatable (the same session index
//! drops the same packet positions in every run), unlike `rand`'s thread RNG.

pub struct Dropper {
    state: u64,
    /// Drop when the next draw is below this (fraction x 2^64).
    threshold: u64,
}

impl Dropper {
    /// None when `fraction` is 0 (or not a number): nothing to drop.
    pub fn new(fraction: f64, seed: u64) -> Option<Self> {
        if fraction.is_nan() || fraction <= 0.0 {
            return None;
        }
        let threshold = if fraction >= 1.0 { u64::MAX } else { (fraction * 2f64.powi(64)) as u64 };
        // splitmix64 of the seed: distinct, never-zero states for seeds 0, 1, 2...
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Some(Self { state: z | 1, threshold })
    }

    /// True if the next packet is to be dropped.
    pub fn drop_next(&mut self) -> bool {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_close_and_runs_repeat() {
        let mut a = Dropper::new(0.01, 3).unwrap();
        let mut b = Dropper::new(0.01, 3).unwrap();
        let mut n = 0;
        for _ in 0..200_000 {
            let x = a.drop_next();
            assert_eq!(x, b.drop_next());
            n += usize::from(x);
        }
        assert!((1700..2300).contains(&n), "{n}");
        assert!(Dropper::new(0.0, 1).is_none());
        let mut all = Dropper::new(1.0, 1).unwrap();
        assert!((0..100).all(|_| all.drop_next()));
    }

    #[test]
    fn seeds_differ() {
        let mut a = Dropper::new(0.5, 1).unwrap();
        let mut b = Dropper::new(0.5, 2).unwrap();
        assert!((0..64).any(|_| a.drop_next() != b.drop_next()));
    }
}
