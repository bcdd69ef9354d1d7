//! Trendline filter: is queuing delay building up? The accumulated group
//! delay variation is smoothed and a least-squares line fitted through its
//! recent history against arrival time; the slope is how fast the queue
//! grows (ms of delay per ms).

/// Points in the regression window.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Scales the slope into the detector's units, together with the number of
/// deltas seen (capped), so a short history weighs less.
const GAIN: f64 = 4.0;
const MAX_DELTAS: u32 = 60;

#[derive(Debug)]
pub(super) struct Trendline {
    /// (arrival ms since the first delta, smoothed accumulated delay ms); a ring.
    points: [(f64, f64); WINDOW],
    len: usize,
    next: usize,
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    deltas: u32,
    slope: f64,
}

impl Default for Trendline {
    fn default() -> Self {
        Trendline {
            points: [(0.0, 0.0); WINDOW],
            len: 0,
            next: 0,
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            deltas: 0,
            slope: 0.0,
        }
    }
}

impl Trendline {
    /// Adds one group's delay variation (`arrival spacing - send spacing`)
    /// observed at `arrival_us`. Returns the modified trend, once the window is full.
    pub(super) fn update(&mut self, variation_ms: f64, arrival_us: i64) -> Option<f64> {
        let first = *self.first_arrival_us.get_or_insert(arrival_us);
        self.deltas = (self.deltas + 1).min(MAX_DELTAS);
        self.accumulated_ms += variation_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let x = (arrival_us - first) as f64 / 1000.0;
        self.points[self.next] = (x, self.smoothed_ms);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len < WINDOW {
            return None;
        }
        if let Some(slope) = fit_slope(&self.points) {
            self.slope = slope;
        }
        Some(self.slope * f64::from(self.deltas) * GAIN)
    }

    pub(super) fn reset(&mut self) {
        *self = Trendline::default();
    }
}

/// Least-squares slope of y over x; `None` when all x are equal.
fn fit_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(x, y) in points {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        assert!((fit_slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(fit_slope(&[(1.0, 2.0), (1.0, 5.0)]), None);
    }

    #[test]
    fn constant_delay_is_flat_and_growing_delay_is_not() {
        let mut flat = Trendline::default();
        let mut growing = Trendline::default();
        let (mut f, mut g) = (None, None);
        for i in 0..40i64 {
            f = flat.update(0.0, i * 10_000);
            // each 10 ms group arrives 2 ms later than the last
            g = growing.update(2.0, i * 12_000);
        }
        assert_eq!(f, Some(0.0));
        assert!(g.unwrap() > 12.5, "{g:?}");
        // Nothing before the window fills.
        let mut t = Trendline::default();
        assert!((0..WINDOW as i64 - 1).all(|i| t.update(1.0, i).is_none()));
    }
}
