//! Allocator tuning for services that allocate many large, short-lived buffers (the worker's
//! batches and their gzip output, the transformer's blobs).
//!
//! glibc's malloc serves an allocation above `M_MMAP_THRESHOLD` (128 KiB at start) with its own
//! `mmap` and unmaps it on free. The threshold is dynamic, though: every freed mmap'd block
//! raises it to that block's size (up to 32 MiB), so after the first few batches multi-MiB
//! buffers come from the heap arenas instead, where freed space stays resident and fragments.
//! Pinning the threshold (which also turns the adjustment off) gives the memory back on every
//! free. Measured on the worker behind 1 M records of lag (docs/BENCHMARKS.md): peak RSS 180–220 MB
//! with the dynamic threshold, ~106 MB pinned, at the same or a better landing rate. mimalloc,
//! tried as the global allocator instead, kept 230–250 MB.

/// Where large allocations go to `mmap` (and back to the OS when freed): glibc's initial value.
pub const MMAP_THRESHOLD_BYTES: usize = 128 * 1024;

/// Pins glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`]; call once at start-up. Returns
/// whether it applied (false on other C libraries, where it does nothing).
pub fn return_large_buffers_to_os() -> bool {
    pin_mmap_threshold()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "the workspace's one FFI call: glibc's mallopt, audited below"
)]
fn pin_mmap_threshold() -> bool {
    let bytes = libc::c_int::try_from(MMAP_THRESHOLD_BYTES).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt(3) only sets a malloc tuning parameter; it takes plain integers, touches
    // no caller memory, is thread-safe in glibc (it takes the arena locks), and M_MMAP_THRESHOLD
    // accepts any value up to 32 MiB. It returns 1 on success, 0 on error.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_pinned_threshold() {
        assert!(return_large_buffers_to_os());
        // Large buffers still allocate and free normally afterwards.
        let big = vec![7u8; 8 * 1024 * 1024];
        assert_eq!(
            big.iter().map(|b| usize::from(*b)).sum::<usize>(),
            7 * 8 * 1024 * 1024
        );
    }
}
