//! `bench large-blob`: one large raw blob, shaped like the simulator's records and gzipped like the
//! worker's, in a fresh Azurite container. It is how the transformer's peak memory on big blobs
//! is measured (docs/DESIGN.md, transformer "Memory"):
//!
//! ```text
//! cargo run --release -p bench -- large-blob --blob-records 4000000
//! # prints the two container URLs and the blob name, then:
//! RAW_URL=az://… STANDARD_URL=az://… /usr/bin/time -v target/release/transformer transform NAME
//! ```
//!
//! The records are `bench transformer`'s ([`crate::transform::Lines`]: game blobs 95 % `Attack
//! Completed` in both TIMESTAMP formats and 5 % `Attacked Dead Enemy`; lobby blobs 70 %
//! `Starting Match` with 2–3 heroes, 20 % `Cleaning Game Records`, 10 % `Game Timed Out`), with
//! tokens per game ([`Tokens::PerGame`]: games of 40 records and 3 players, so tokens repeat as
//! in a real run). They are generated, gzipped and uploaded as a stream, so this program's own
//! memory stays flat whatever `BLOB_RECORDS`.

use std::io::Write;

use anyhow::Context;
use bytes::Bytes;
use flate2::write::GzEncoder;
use object_store::WriteMultipart;
use object_store::path::Path;

use crate::config::LargeBlobConfig;
use crate::transform::{Lines, Tokens, blob_name, seed_of};

/// Gzipped bytes per uploaded part.
const PART_BYTES: usize = 8 << 20;

/// The topic whose records a large blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlobTopic {
    /// lib.server.game.
    Game,
    /// lib.server.lobby.
    Lobby,
}

impl BlobTopic {
    /// The topic's name.
    pub fn name(self) -> &'static str {
        match self {
            BlobTopic::Game => model::TOPIC_GAME,
            BlobTopic::Lobby => model::TOPIC_LOBBY,
        }
    }
}

/// `bench large-blob`: writes the blob, prints `RAW_URL=… STANDARD_URL=… NAME` on stdout and its
/// sizes on stderr.
pub async fn command(config: LargeBlobConfig) -> anyhow::Result<()> {
    let config = config.validate()?;
    let (topic, records) = (config.blob_topic.name(), config.blob_records as usize);
    let (raw_url, raw) =
        testkit::new_container("raw").context("raw container (scripts/stack up)")?;
    let (std_url, _) = testkit::new_container("std").context("standard container")?;
    let name = blob_name(topic, records);
    let upload = raw.put_multipart(&Path::from(name.as_str())).await?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut lines = Lines::new(topic, seed_of(records), Tokens::PerGame);
    let (mut line, mut json_bytes, mut gz_bytes) = (Vec::new(), 0u64, 0u64);
    for _ in 0..records {
        line.clear();
        lines.push_next(&mut line);
        json_bytes += line.len() as u64;
        gz.write_all(&line)?;
        if gz.get_ref().len() >= PART_BYTES {
            let chunk = std::mem::take(gz.get_mut());
            gz_bytes += chunk.len() as u64;
            parts.wait_for_capacity(2).await?;
            parts.put(Bytes::from(chunk));
        }
    }
    let rest = gz.finish()?;
    gz_bytes += rest.len() as u64;
    parts.put(Bytes::from(rest));
    parts.finish().await?;
    eprintln!(
        "bench large-blob: {records} records, {:.1} MB of JSON, {:.1} MB gzipped",
        json_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6
    );
    println!("RAW_URL={raw_url} STANDARD_URL={std_url} {name}");
    Ok(())
}
