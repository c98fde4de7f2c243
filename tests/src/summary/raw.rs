//! Raw blobs decoded once into their offsets, and the offsets a manifest still misses in raw.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use model::naming::RawBlobName;
use model::raw::RawLine;
use object_store::ObjectStore;
use simulator::Manifest;
use transformer::delta::staged::{STAGING_PREFIX, blob_key};

use super::{RECEIPTS_PREFIX, Scope, SummaryError, exists, get, list};

/// What one raw blob holds.
#[derive(Debug, Clone)]
pub struct RawBlob {
    /// Name in the raw container.
    pub name: String,
    /// The parsed name.
    pub parsed: RawBlobName,
    /// Offsets of its lines (all of them, in line order).
    pub offsets: Vec<i64>,
    /// Lines that did not decode as raw lines.
    pub unreadable: u64,
}

/// Incremental view of the containers (raw blobs are decoded once).
#[derive(Debug, Default)]
pub struct Scan {
    raw: BTreeMap<String, RawBlob>,
    pub(super) receipts: BTreeSet<String>,
    /// Raw names that were listed but not decoded because they cannot touch the scope.
    skipped: u64,
}

impl Scan {
    /// Raw blobs read so far that hold scoped records.
    pub fn blobs_in<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a RawBlob> + 'a {
        self.raw.values().filter(move |b| {
            b.offsets
                .iter()
                .any(|o| scope.contains(&b.parsed.topic, b.parsed.partition, *o))
        })
    }

    /// Lists raw, decodes new blobs that can touch the scope, and looks for their receipts.
    pub async fn refresh(
        &mut self,
        raw: &dyn ObjectStore,
        standard: &dyn ObjectStore,
        scope: &Scope,
    ) -> Result<(), SummaryError> {
        let names = match scope.topics() {
            None => list(raw, None).await?,
            Some(topics) => {
                let mut all = Vec::new();
                for t in topics {
                    all.extend(list(raw, Some(&format!("{t}/"))).await?);
                }
                all
            }
        };
        // Per partition, blobs sorted by first offset: a blob covers [first, next first - 1], so
        // only those that can overlap the scoped range need reading.
        let mut parts: BTreeMap<(String, i32), Vec<Listed>> = BTreeMap::new();
        for n in names {
            if let Ok(p) = RawBlobName::parse(&n) {
                parts
                    .entry((p.topic.clone(), p.partition))
                    .or_default()
                    .push((p.first_offset, n, p));
            }
        }
        self.skipped = 0;
        for ((topic, partition), mut blobs) in parts {
            let Some((lo, hi)) = scope.range(&topic, partition) else {
                self.skipped += blobs.len() as u64;
                continue;
            };
            blobs.sort_by_key(|b| b.0);
            let nexts: Vec<Option<i64>> = blobs
                .iter()
                .skip(1)
                .map(|b| Some(b.0))
                .chain([None])
                .collect();
            for ((first, name, parsed), next) in blobs.into_iter().zip(nexts) {
                let touches = first <= hi && next.is_none_or(|n| n > lo);
                if !touches {
                    self.skipped += 1;
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = self.raw.entry(name) {
                    let blob = read_raw(raw, slot.key(), parsed).await?;
                    slot.insert(blob);
                }
            }
        }
        let pending: Vec<String> = self
            .blobs_in(scope)
            .filter(|b| !self.receipts.contains(&b.name))
            .map(|b| b.name.clone())
            .collect();
        let mut with_receipt = Vec::new();
        for name in pending {
            if exists(standard, &format!("{RECEIPTS_PREFIX}/{name}.json")).await? {
                with_receipt.push(name);
            }
        }
        if with_receipt.is_empty() {
            return Ok(());
        }
        // Delta mode: a receipt is written after the blob's manifest is staged, and its rows are
        // in once the manifest is committed and deleted. Listed after the receipts were read, a
        // manifest gone from the listing was committed.
        let staged: std::collections::HashSet<String> = list(standard, Some(STAGING_PREFIX))
            .await?
            .iter()
            .filter_map(|n| {
                let file = n.rsplit('/').next()?.strip_suffix(".json")?;
                Some(file.rsplit_once('.')?.0.to_owned())
            })
            .collect();
        for name in with_receipt {
            let key = self.raw.get(&name).map(|b| blob_key(&b.parsed));
            if !key.is_some_and(|k| staged.contains(&k)) {
                self.receipts.insert(name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl Scan {
    /// Adds a decoded blob as if it had been listed and read (unit tests of the verdicts).
    pub(super) fn insert(&mut self, blob: RawBlob, receipt: bool) {
        if receipt {
            self.receipts.insert(blob.name.clone());
        }
        self.raw.insert(blob.name.clone(), blob);
    }
}

/// A listed raw blob: first offset, name, parsed name.
type Listed = (i64, String, RawBlobName);

/// Reads and decodes one raw blob.
pub async fn read_raw(
    raw: &dyn ObjectStore,
    name: &str,
    parsed: RawBlobName,
) -> Result<RawBlob, SummaryError> {
    let gz = get(raw, name).await?.unwrap_or_default();
    let gunzip = |source| SummaryError::Gunzip {
        blob: name.to_owned(),
        source,
    };
    let mut reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(&gz[..]));
    let mut blob = RawBlob {
        name: name.to_owned(),
        parsed,
        offsets: Vec::new(),
        unreadable: 0,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(gunzip)? == 0 {
            break;
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        match RawLine::decode(bytes) {
            Ok(l) => blob.offsets.push(l.offset),
            Err(_) => blob.unreadable += 1,
        }
    }
    Ok(blob)
}

/// What is still missing in raw for the manifest's scope (empty when everything landed).
pub fn raw_gaps(scan: &Scan, manifest: &Manifest) -> Vec<String> {
    let scope = Scope::of(manifest);
    let mut seen: BTreeMap<(String, i32), BTreeSet<i64>> = BTreeMap::new();
    for b in scan.blobs_in(&scope) {
        let set = seen
            .entry((b.parsed.topic.clone(), b.parsed.partition))
            .or_default();
        set.extend(
            b.offsets
                .iter()
                .filter(|o| scope.contains(&b.parsed.topic, b.parsed.partition, **o)),
        );
    }
    let mut gaps = Vec::new();
    for (t, parts) in &manifest.topics {
        for (p, s) in parts {
            let have = seen.get(&(t.clone(), *p)).map_or(0, |s| s.len() as u64);
            let want = (s.max_offset - s.min_offset + 1) as u64;
            if have < want {
                gaps.push(format!("{t}/{p}: {have}/{want} offsets in raw"));
            }
        }
    }
    gaps
}
