//! Which of the last 512 frame numbers were forwarded: enough to tell
//! whether a frame's references reached the subscriber. A fixed bitmap
//! that slides with the newest number; older numbers read as absent.

const WINDOW: u16 = 512;

#[derive(Debug, Clone, Default)]
pub struct ForwardedFrames {
    bits: [u64; WINDOW as usize / 64],
    newest: Option<u16>,
}

impl ForwardedFrames {
    fn slot(n: u16) -> (usize, u64) {
        let i = n % WINDOW;
        (usize::from(i / 64), 1u64 << (i % 64))
    }

    fn set(&mut self, n: u16, on: bool) {
        let (w, b) = Self::slot(n);
        if on {
            self.bits[w] |= b;
        } else {
            self.bits[w] &= !b;
        }
    }

    /// Frame numbers wrap at 2^16; "newer" is within half of that.
    pub fn insert(&mut self, n: u16) {
        let Some(newest) = self.newest else {
            self.newest = Some(n);
            self.set(n, true);
            return;
        };
        let ahead = n.wrapping_sub(newest);
        if ahead == 0 || ahead >= 0x8000 {
            // Not newer: mark it if still inside the window.
            if newest.wrapping_sub(n) < WINDOW {
                self.set(n, true);
            }
            return;
        }
        if ahead >= WINDOW {
            self.bits = Default::default();
        } else {
            for k in 1..ahead {
                self.set(newest.wrapping_add(k), false);
            }
        }
        self.set(n, true);
        self.newest = Some(n);
    }

    pub fn contains(&self, n: u16) -> bool {
        let Some(newest) = self.newest else { return false };
        if newest.wrapping_sub(n) >= WINDOW {
            return false;
        }
        let (w, b) = Self::slot(n);
        self.bits[w] & b != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_window_and_forgets_gaps_and_old_numbers() {
        let mut f = ForwardedFrames::default();
        assert!(!f.contains(0));
        f.insert(65530);
        f.insert(65533);
        f.insert(2); // wrapped
        assert!(f.contains(65530) && f.contains(65533) && f.contains(2));
        assert!(!f.contains(65531) && !f.contains(0) && !f.contains(3));
        // A late one inside the window is kept.
        f.insert(65531);
        assert!(f.contains(65531));
        // Sliding past a number forgets it, even when its slot is reused.
        f.insert(2 + 512);
        assert!(!f.contains(2) && !f.contains(65530));
        assert!(f.contains(2 + 512));
        // A jump past the whole window clears it.
        f.insert(514 + 20000);
        assert!(!f.contains(514) && f.contains(514 + 20000));
        // 40000 back is "older" in serial arithmetic, and outside: ignored.
        f.insert(514 + 20000 + 40000);
        assert!(!f.contains(514 + 20000 + 40000) && f.contains(514 + 20000));
    }
}
