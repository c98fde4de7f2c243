//! Streaming gunzip of a raw blob into JSON lines.
//!
//! The compressed blob is in memory once; it is inflated through a `MultiGzDecoder` (the worker
//! may write multi-member gzip) one line at a time into a reused buffer, so memory stays at the
//! compressed blob plus the longest line, never the whole inflated text.

use std::io::{BufRead, BufReader};

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

/// Calls `f(line_number, line)` for every non-empty line of the gzipped `blob` (1-based line
/// numbers, counting empty lines, so they point into the inflated text).
pub fn for_each_line(
    blob_name: &str,
    gz: &[u8],
    mut f: impl FnMut(u64, &[u8]),
) -> Result<LineStats, DecodeError> {
    let mut reader = BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(gz));
    let mut buf = Vec::with_capacity(4096);
    let mut stats = LineStats::default();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| DecodeError {
                blob: blob_name.to_owned(),
                lines: stats.lines,
                bytes: stats.bytes,
                source,
            })?;
        if n == 0 {
            return Ok(stats);
        }
        number += 1;
        stats.bytes += n as u64;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        f(number, line);
    }
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
