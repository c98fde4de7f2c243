//! Reused byte buffers for batch bodies and their gzip.
//!
//! Behind a backlog the worker fills and frees a batch body (~0.5-1 MiB at `BATCH_SIZE` 1 000)
//! and its gzip hundreds of times a second. Freed, such a buffer goes back to the OS (glibc's
//! mmap threshold is pinned, see `service::alloc`), and the next one is faulted in page by
//! page: measured, page faults were ~13 % of the worker's CPU. A [`BufferPool`] keeps a bounded
//! number of bytes of freed buffers and hands them out again; [`BufferPool::freeze`] turns a
//! filled buffer into [`Bytes`] that give it back when the last clone is dropped (after the
//! upload, wherever that happens).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// A bounded free list of byte buffers.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// Most capacity kept free, in bytes.
    max_free_bytes: usize,
    /// Least capacity of a buffer handed out.
    min_capacity: usize,
}

impl BufferPool {
    /// A pool keeping at most `max_free_bytes` of capacity in freed buffers.
    pub fn new(max_free_bytes: usize) -> Arc<Self> {
        Self::with_min_capacity(max_free_bytes, 0)
    }

    /// A pool whose buffers all have room for at least `min_capacity` bytes. At glibc's pinned
    /// mmap threshold ([`service::alloc::MMAP_THRESHOLD_BYTES`]) every buffer is its own
    /// mapping: given back to the OS when freed, and resident only as far as it was written.
    /// Smaller ones come from malloc's arenas, which keep the high-water mark of everything
    /// once buffered resident (measured: ~110 MB of arenas at `BATCH_SIZE` 100, whose ~70 kB
    /// bodies sat below the threshold).
    pub fn with_min_capacity(max_free_bytes: usize, min_capacity: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            max_free_bytes,
            min_capacity,
        })
    }

    /// An empty buffer with room for at least `want` bytes: a freed one whose capacity is
    /// between `want` and twice that (so a reused buffer never holds much more memory than the
    /// batch it carries), else a new one.
    pub fn take(&self, want: usize) -> Vec<u8> {
        let want = want.max(self.min_capacity);
        if want > 0 {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            // Newest first: its pages are the likeliest to be in cache.
            if let Some(i) = free
                .iter()
                .rposition(|b| (want..=want.saturating_mul(2)).contains(&b.capacity()))
            {
                return free.swap_remove(i);
            }
        }
        Vec::with_capacity(want)
    }

    /// Keeps `buf` for reuse, unless that would hold more than the pool's bound (then the
    /// oldest freed buffers make room, or `buf` is dropped if it alone is too big).
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap == 0 || cap > self.max_free_bytes {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let mut held: usize = free.iter().map(Vec::capacity).sum();
        while held + cap > self.max_free_bytes && !free.is_empty() {
            held -= free.remove(0).capacity();
        }
        free.push(buf);
    }

    /// `buf` as [`Bytes`]; the buffer comes back to this pool when the last clone is dropped.
    pub fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    /// Least capacity of a buffer this pool hands out.
    pub fn min_capacity(&self) -> usize {
        self.min_capacity
    }

    /// Capacity held in freed buffers.
    pub fn free_bytes(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.iter().map(Vec::capacity).sum()
    }
}

/// A buffer lent out as [`Bytes`].
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_buffer_comes_back_when_its_last_clone_drops() {
        let pool = BufferPool::new(1 << 20);
        let mut buf = pool.take(1000);
        let ptr = buf.as_ptr();
        buf.extend_from_slice(b"hello");
        let bytes = pool.freeze(buf);
        let slice = bytes.slice(1..);
        drop(bytes);
        assert_eq!(pool.free_bytes(), 0, "a slice still holds it");
        assert_eq!(&slice[..], b"ello");
        drop(slice);
        assert!(pool.free_bytes() >= 1000);
        let again = pool.take(900);
        assert_eq!(
            again.as_ptr(),
            ptr,
            "the same allocation is handed out again"
        );
        assert!(again.is_empty());
    }

    #[test]
    fn only_a_buffer_between_the_want_and_twice_it_is_reused() {
        let pool = BufferPool::new(1 << 20);
        pool.give(Vec::with_capacity(10_000));
        assert_eq!(pool.take(20_001).capacity(), 20_001, "too small: a new one");
        assert_eq!(pool.take(4_000).capacity(), 4_000, "too big: a new one");
        assert_eq!(pool.take(6_000).capacity(), 10_000);
        assert_eq!(pool.free_bytes(), 0);
    }

    #[test]
    fn a_minimum_rounds_small_wants_up_and_their_buffers_are_reused() {
        let pool = BufferPool::with_min_capacity(1 << 20, 4096);
        let small = pool.take(100);
        assert_eq!(small.capacity(), 4096, "rounded up to the minimum");
        let ptr = small.as_ptr();
        pool.give(small);
        let again = pool.take(10);
        assert_eq!(again.as_ptr(), ptr, "a smaller want reuses it");
        assert_eq!(pool.take(0).capacity(), 4096, "even an empty want");
        assert_eq!(pool.take(5000).capacity(), 5000, "above it: as wanted");
    }

    #[test]
    fn the_pool_never_holds_more_than_its_bound() {
        let pool = BufferPool::new(25_000);
        for _ in 0..5 {
            pool.give(Vec::with_capacity(10_000));
        }
        assert_eq!(pool.free_bytes(), 20_000);
        pool.give(Vec::with_capacity(30_000));
        assert_eq!(pool.free_bytes(), 20_000, "bigger than the bound: dropped");
        pool.give(Vec::with_capacity(12_000));
        assert_eq!(pool.free_bytes(), 22_000, "the oldest made room");
    }
}
