//! Streaming gunzip of a raw blob into JSON lines.
//!
//! The blob is read as a byte stream (any `Read`: a slice in tests and benchmarks, the GET body
//! in [`crate::process`]) through a `MultiGzDecoder` (the worker may write multi-member gzip)
//! one line at a time into a reused buffer, so memory stays at the reader's chunks plus the
//! longest line, never the whole blob nor its inflated text.

use std::io::{BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

/// Why the blob's bytes could not be read as gzipped lines (the whole blob fails).
#[derive(Debug, thiserror::Error)]
#[error(
    "{blob} is not a readable gzip stream (after {lines} lines, {bytes} inflated bytes): {source}"
)]
pub struct DecodeError {
    /// The raw blob name.
    pub blob: String,
    /// Lines read before the failure.
    pub lines: u64,
    /// Inflated bytes read before the failure.
    pub bytes: u64,
    /// The gzip / IO error.
    #[source]
    pub source: std::io::Error,
}

/// Totals of one pass over a blob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Non-empty lines.
    pub lines: u64,
    /// Inflated bytes (the raw JSON text, newlines included).
    pub bytes: u64,
}

/// The non-empty lines of a gzipped stream, one at a time (a lending iterator: each line
/// borrows the reused buffer until the next call).
#[derive(Debug)]
pub struct GzLines<R: Read> {
    blob: String,
    reader: BufReader<MultiGzDecoder<R>>,
    buf: Vec<u8>,
    stats: LineStats,
    number: u64,
}

impl<R: Read> GzLines<R> {
    /// Lines of the gzipped `gz`, named `blob_name` in errors.
    pub fn new(blob_name: &str, gz: R) -> Self {
        GzLines {
            blob: blob_name.to_owned(),
            reader: BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(gz)),
            buf: Vec::with_capacity(4096),
            stats: LineStats::default(),
            number: 0,
        }
    }

    /// The next non-empty line with its 1-based line number (counting empty lines, so it
    /// points into the inflated text), or `None` at the end of the stream.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, DecodeError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| DecodeError {
                    blob: self.blob.clone(),
                    lines: self.stats.lines,
                    bytes: self.stats.bytes,
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            self.stats.bytes += n as u64;
            let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.stats.lines += 1;
            // Re-borrow outside the loop's borrow of `buf` (the slice bounds are known).
            let len = line.len();
            return Ok(Some((self.number, &self.buf[..len])));
        }
    }

    /// Lines and inflated bytes read so far.
    pub fn stats(&self) -> LineStats {
        self.stats
    }
}

/// Calls `f(line_number, line)` for every non-empty line of the gzipped `blob` (1-based line
/// numbers, counting empty lines, so they point into the inflated text).
pub fn for_each_line(
    blob_name: &str,
    gz: &[u8],
    mut f: impl FnMut(u64, &[u8]),
) -> Result<LineStats, DecodeError> {
    let mut lines = GzLines::new(blob_name, gz);
    while let Some((number, line)) = lines.next_line()? {
        f(number, line);
    }
    Ok(lines.stats())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn reads_lines_across_gzip_members_and_skips_blank_ones() {
        let mut blob = gz(b"a\n\nb\n");
        blob.extend(gz(b"c"));
        let mut seen = Vec::new();
        let stats = for_each_line("x", &blob, |n, l| seen.push((n, l.to_vec()))).expect("gzip");
        assert_eq!(
            seen,
            [(1, b"a".to_vec()), (3, b"b".to_vec()), (4, b"c".to_vec())]
        );
        assert_eq!(stats, LineStats { lines: 3, bytes: 6 });
    }

    #[test]
    fn not_gzip_fails_naming_the_blob() {
        let err =
            for_each_line("raw/x.json.gz", b"{\"plain\": 1}\n", |_, _| {}).expect_err("fails");
        assert!(
            err.to_string()
                .starts_with("raw/x.json.gz is not a readable gzip stream"),
            "{err}"
        );
    }
}
