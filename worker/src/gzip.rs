//! Gzip of a batch body, with the deflate state kept per thread.
//!
//! A deflate compressor holds ~300 KiB of window and hash tables. Made afresh for every batch
//! (what `flate2::write::GzEncoder` does), those tables are allocated, zeroed and, being above
//! glibc's mmap threshold (see `service::alloc`), unmapped again each time: behind a backlog at
//! `BATCH_SIZE` 1 000 that is hundreds of fresh mappings a second, paid in page faults. Here each
//! thread of tokio's blocking pool keeps one raw-deflate [`Compress`] (made anew only when the
//! level changes) and resets it between batches; the gzip header and trailer (RFC 1952) are
//! written around it as `GzEncoder` writes them. The stream is one deflate call over the whole body, so it can differ from
//! `GzEncoder`'s (which feeds its input in chunks) in where blocks are cut, by a few bytes; the
//! body is what it holds, deterministically, and the tests hold both to that.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

thread_local! {
    /// This thread's compressor and the level it was made for.
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// The gzip header `GzEncoder` writes: no name, comment or extra field, mtime 0, OS "unknown";
/// XFL says "fastest" at levels 0-1 and "best" at 9, as flate2 sets it.
fn header(level: Compression) -> [u8; 10] {
    let xfl = match level.level() {
        0 | 1 => 4,
        9.. => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Gzip of `body` at `level`: one member, with `GzEncoder`'s header.
pub fn compress(body: &[u8], level: Compression) -> std::io::Result<Bytes> {
    compress_into(body, level, Vec::with_capacity(capacity_for(body.len()))).map(Bytes::from)
}

/// A first guess of the gzip size of `len` bytes of JSON lines (it grows if short).
pub fn capacity_for(len: usize) -> usize {
    len / 4 + 64
}

/// [`compress`] into `out` (cleared first), for a caller that reuses output buffers.
pub fn compress_into(
    body: &[u8],
    level: Compression,
    mut out: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    out.clear();
    out.extend_from_slice(&header(level));
    DEFLATE.with_borrow_mut(|slot| -> std::io::Result<()> {
        let deflate = match slot {
            Some((l, d)) if *l == level.level() => {
                d.reset();
                d
            }
            _ => &mut slot.insert((level.level(), Compress::new(level, false))).1,
        };
        let result = deflate_into(deflate, body, &mut out);
        if result.is_err() {
            // Never reuse a compressor left mid-stream.
            *slot = None;
        }
        result
    })?;
    let mut crc = Crc::new();
    crc.update(body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input size modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    Ok(out)
}

/// Runs `deflate` over all of `body` to the end of the stream, appending to `out`.
fn deflate_into(deflate: &mut Compress, body: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let read = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
        let input = body.get(read..).unwrap_or_default();
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        match deflate
            .compress_vec(input, out, FlushCompress::Finish)
            .map_err(std::io::Error::other)?
        {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    use super::*;

    fn gz_encoder(body: &[u8], level: u32) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
        enc.write_all(body).expect("in memory");
        enc.finish().expect("in memory")
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"offset\":{i},\"value\":{{\"log_message\":\"Attack Completed\",\"damage\":{}}}}}\n", i * 7 % 101)
                    .into_bytes()
            })
            .collect()
    }

    fn decode(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut back)
            .expect("valid gzip");
        back
    }

    #[test]
    fn same_compression_as_gz_encoder_at_every_level_even_after_reuse() {
        // Twice round, levels interleaved: the second pass runs on reset compressors. The bytes
        // differ from GzEncoder's only in where blocks are cut (it feeds its input in chunks),
        // so the sizes agree to within a few bytes.
        for _ in 0..2 {
            for level in 0..=9 {
                let body = lines(20_000);
                let ours = compress(&body, Compression::new(level)).expect("in memory");
                let theirs = gz_encoder(&body, level);
                assert!(decode(&ours) == body, "level {level} does not round-trip");
                assert_eq!(ours[..10], theirs[..10], "level {level}: header");
                assert!(
                    ours.len().abs_diff(theirs.len()) <= theirs.len() / 100 + 8,
                    "level {level}: {} bytes, GzEncoder {}",
                    ours.len(),
                    theirs.len()
                );
            }
        }
    }

    #[test]
    fn every_level_decodes_to_the_input_the_same_way_each_time() {
        for level in 0..=9 {
            for body in [Vec::new(), lines(3), lines(20_000)] {
                let first = compress(&body, Compression::new(level)).expect("in memory");
                let again = compress(&body, Compression::new(level)).expect("in memory");
                assert!(first == again, "level {level} is not deterministic");
                assert!(decode(&first) == body, "level {level} does not round-trip");
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(
            body in proptest::collection::vec(any::<u8>(), 0..20_000),
            level in 0u32..=9,
        ) {
            let ours = compress(&body, Compression::new(level)).expect("in memory");
            prop_assert!(decode(&ours) == body);
        }
    }
}
