//! Software prefetch for the fan-out.
//!
//! Forwarding one packet to hundreds of subscribers touches a few cache
//! lines of each one's state (its downtrack, sequence mapper slots, SRTP
//! stream and key, send history), and between two packets the kernel's
//! send path evicts them. The fan-out asks for a subscriber's lines a few
//! subscribers ahead, so the misses overlap with useful work instead of
//! stalling it one after another. A prefetch is a hint: it never faults and
//! changes no state, so a stale or wild address costs at most a wasted load.

/// Asks for the cache line holding `p`.
#[inline(always)]
pub fn line<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not dereference in the language
    // sense, never faults, and any address is allowed.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every cache line of `*v`, up to `MAX_LINES` of them.
#[inline(always)]
pub fn value<T>(v: &T) {
    const MAX_LINES: usize = 8;
    head(v, std::mem::size_of::<T>().div_ceil(64).min(MAX_LINES));
}

/// Asks for the first `n` cache lines of `*v`: for a value too big to warm
/// whole, laid out (`repr(C)`) with what is read first at its head.
#[inline(always)]
pub fn head<T>(v: &T, n: usize) {
    let base = (v as *const T).cast::<u8>();
    for i in 0..n {
        line(base.wrapping_add(i * 64));
    }
}
