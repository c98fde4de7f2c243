//! The two verdicts on a scan and the outputs it points at.
//!
//! - **Pipeline** (the dataflow's promise): every offset of each scoped partition range is in
//!   exactly one raw line, every raw blob holding them is transformed (receipt, no poison), every
//!   one has exactly one `buffer_meta` row, and the tables agree with what raw holds
//!   (`buffer_meta` = records in raw, `log_meta` + dead letters = `buffer_meta`, `etl_meta` = raw
//!   blobs); the bad records the manifest lists are dead letters with a matching reason.
//! - **Producer** (the simulator's promise): its manifest's counts match what Kafka holds. Kafka
//!   offsets are contiguous, so a partition range `[min_offset, max_offset]` holds
//!   `max - min + 1` records; a manifest that confirmed fewer missed deliveries that were stored
//!   anyway (a delivery report that timed out, a retry). Failed deliveries count here too.
//!
//! The content counts (`log_meta` = good records, `lib_server_lobby` = participant rows,
//! `lib_server_game` = attack rows, dead letters = injected bad records) can only be judged
//! against the manifest. When the manifest confirmed every offset of its ranges it knows every
//! record, so a mismatch is the pipeline's; when it undercounts, the records it does not know may
//! explain the difference, so the mismatch is reported under the producer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use object_store::ObjectStore;
use simulator::Manifest;

use super::{
    DeadLetter, RawBlob, Scan, Scope, Standard, SummaryError, expected_reasons, poisoned, raw_gaps,
    read_standard,
};

/// Records per topic: what the manifest confirmed, what its ranges hold, what raw holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicRecords {
    /// Deliveries the manifest confirmed (`None` without a manifest).
    pub confirmed: Option<u64>,
    /// Offsets in the manifest's partition ranges, i.e. records Kafka holds there (`None`
    /// without a manifest).
    pub in_range: Option<u64>,
    /// Distinct scoped offsets found in raw.
    pub in_raw: u64,
}

/// Rows of one model: found, implied by raw, and claimed by the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelRows {
    /// Scoped rows found in `standard`.
    pub got: u64,
    /// What raw implies (`None` when raw alone cannot tell, e.g. lobby rows).
    pub from_raw: Option<u64>,
    /// What the manifest implies (`None` without a manifest or when it has no number).
    pub manifest: Option<u64>,
}

/// The comparison of a run with raw, standard and its manifest.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records per topic.
    pub records: BTreeMap<String, TopicRecords>,
    /// Whether a manifest was given (the producer verdict needs one).
    pub has_manifest: bool,
    /// Records in the manifest's ranges it did not confirm (its undercount; 0 without one).
    pub unconfirmed: u64,
    /// Raw blobs holding scoped records.
    pub raw_blobs: u64,
    /// Scoped raw blobs without a receipt.
    pub unprocessed: Vec<String>,
    /// Scoped raw blobs with a poison entry.
    pub poisoned: Vec<String>,
    /// Rows per model.
    pub rows: BTreeMap<&'static str, ModelRows>,
    /// Dead letters per reason code.
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Injected bad records per simulator kind.
    pub bad_by_kind: BTreeMap<String, u64>,
    /// `msg_id`s seen more than once in `buffer_meta`.
    pub duplicates: Vec<String>,
    /// Where the pipeline broke its promise; empty means every offset of each partition range
    /// is in raw and in the tables exactly once.
    pub pipeline: Vec<String>,
    /// Where the producer's manifest disagrees with what Kafka holds; empty without a manifest.
    pub producer: Vec<String>,
    /// The outputs read back.
    pub standard: Standard,
}

impl Summary {
    /// The pipeline verdict: nothing missing, duplicated or misclassified between Kafka, raw
    /// and the tables.
    pub fn ok(&self) -> bool {
        self.pipeline.is_empty()
    }

    /// The producer verdict: the manifest's counts match what Kafka holds.
    pub fn producer_ok(&self) -> bool {
        self.producer.is_empty()
    }
}

/// Keeps at most this many examples per problem.
const EXAMPLES: usize = 5;

fn examples<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items
        .into_iter()
        .take(EXAMPLES)
        .map(|i| i.to_string())
        .collect();
    v.join(", ")
}

/// Reads the outputs the scan points at and judges them ([`judge`]).
pub async fn summarize(
    scan: &Scan,
    standard: &Arc<dyn ObjectStore>,
    manifest: Option<&Manifest>,
) -> Result<Summary, SummaryError> {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let blobs: Vec<&RawBlob> = scan.blobs_in(&scope).collect();
    let names: BTreeSet<&str> = blobs.iter().map(|b| b.name.as_str()).collect();
    let poison: Vec<String> = poisoned(standard.as_ref())
        .await?
        .into_iter()
        .filter(|p| names.contains(p.as_str()))
        .collect();
    let std = read_standard(standard, blobs.iter().copied(), &scope).await?;
    Ok(judge(scan, poison, std, manifest))
}

/// Both verdicts on a scan, the poison entries of its blobs and the outputs read back.
pub fn judge(
    scan: &Scan,
    poisoned: Vec<String>,
    std: Standard,
    manifest: Option<&Manifest>,
) -> Summary {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let blobs: Vec<&RawBlob> = scan.blobs_in(&scope).collect();
    let mut s = Summary {
        raw_blobs: blobs.len() as u64,
        has_manifest: manifest.is_some(),
        poisoned,
        ..Summary::default()
    };
    let lines = raw_lines(&mut s, scan, &blobs, &scope, manifest);
    tables(&mut s, &std, &lines);
    if let Some(m) = manifest {
        against_manifest(&mut s, &std, &lines, m);
    }
    s.standard = std;
    s
}

/// Scoped raw offsets and how many lines hold each.
type Lines = BTreeMap<(String, i32, i64), u32>;

/// Pipeline: each scoped offset in exactly one raw line, every blob transformed.
fn raw_lines(
    s: &mut Summary,
    scan: &Scan,
    blobs: &[&RawBlob],
    scope: &Scope,
    manifest: Option<&Manifest>,
) -> Lines {
    let mut lines = Lines::new();
    for b in blobs {
        let (t, p) = (&b.parsed.topic, b.parsed.partition);
        for o in b.offsets.iter().filter(|o| scope.contains(t, p, **o)) {
            *lines.entry((t.clone(), p, *o)).or_default() += 1;
        }
        if b.unreadable > 0 {
            s.pipeline.push(format!(
                "raw blob {} has {} undecodable lines",
                b.name, b.unreadable
            ));
        }
    }
    for (t, _, _) in lines.keys() {
        s.records.entry(t.clone()).or_default().in_raw += 1;
    }
    let dups: Vec<String> = lines
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((t, p, o), n)| format!("{t}+{p}+{o} ×{n}"))
        .collect();
    if !dups.is_empty() {
        s.pipeline.push(format!(
            "{} records are in raw more than once: {}",
            dups.len(),
            examples(&dups)
        ));
    }
    if let Some(m) = manifest {
        for gap in raw_gaps(scan, m) {
            s.pipeline.push(format!("missing in raw: {gap}"));
        }
    }
    s.unprocessed = blobs
        .iter()
        .filter(|b| !scan.receipts.contains(&b.name))
        .map(|b| b.name.clone())
        .collect();
    if !s.unprocessed.is_empty() {
        s.pipeline.push(format!(
            "{} raw blobs have no receipt: {}",
            s.unprocessed.len(),
            examples(&s.unprocessed)
        ));
    }
    if !s.poisoned.is_empty() {
        s.pipeline.push(format!(
            "{} raw blobs are poisoned: {}",
            s.poisoned.len(),
            examples(&s.poisoned)
        ));
    }
    lines
}

/// Pipeline: the tables agree with what raw holds.
fn tables(s: &mut Summary, std: &Standard, lines: &Lines) {
    for d in &std.dead_letters {
        *s.dead_by_reason.entry(d.reason.clone()).or_default() += 1;
    }
    for (model, got) in &std.rows {
        s.rows.insert(
            model,
            ModelRows {
                got: *got,
                ..ModelRows::default()
            },
        );
    }
    s.duplicates = std
        .buffer_msg_ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    s.duplicates.sort();
    if !s.duplicates.is_empty() {
        s.pipeline.push(format!(
            "{} msg_ids are in buffer_meta more than once: {}",
            s.duplicates.len(),
            examples(&s.duplicates)
        ));
    }
    let missing: Vec<String> = lines
        .keys()
        .map(|(t, p, o)| model::naming::msg_id(t, *p, *o))
        .filter(|id| !std.buffer_msg_ids.contains_key(id))
        .collect();
    if !missing.is_empty() {
        s.pipeline.push(format!(
            "{} records in raw have no buffer_meta row: {}",
            missing.len(),
            examples(&missing)
        ));
    }
    let in_raw = lines.len() as u64;
    let dead = std.dead_letters.len() as u64;
    let expect = [
        ("etl_meta", s.raw_blobs),
        ("buffer_meta", in_raw),
        ("log_meta", in_raw.saturating_sub(dead)),
    ];
    for (model, want) in expect {
        let row = s.rows.entry(model).or_default();
        row.from_raw = Some(want);
        if row.got != want {
            let why = match model {
                "etl_meta" => format!("{} raw blobs", s.raw_blobs),
                "buffer_meta" => format!("{in_raw} records in raw"),
                _ => format!("{in_raw} records in raw - {dead} dead letters"),
            };
            s.pipeline.push(format!(
                "{model}: {} rows, expected {want} ({why})",
                row.got
            ));
        }
    }
}

/// Producer: the manifest's counts against Kafka's offset ranges; pipeline: the injected bad
/// records dead-lettered; either: the content counts (see the module doc).
fn against_manifest(s: &mut Summary, std: &Standard, lines: &Lines, m: &Manifest) {
    let mut in_raw: BTreeMap<(&str, i32), u64> = BTreeMap::new();
    for (t, p, _) in lines.keys() {
        *in_raw.entry((t.as_str(), *p)).or_default() += 1;
    }
    for (t, parts) in &m.topics {
        let rec = s.records.entry(t.clone()).or_default();
        for (p, st) in parts {
            let range = (st.max_offset - st.min_offset + 1).max(0) as u64;
            *rec.confirmed.get_or_insert(0) += st.count;
            *rec.in_range.get_or_insert(0) += range;
            if st.count < range {
                s.unconfirmed += range - st.count;
                s.producer.push(format!(
                    "{t}/{p}: the manifest confirmed {} deliveries, but its offset range [{}, {}] \
                     holds {range} records ({} of them in raw): {} stored records the producer \
                     did not see delivered (a timed-out delivery report, a retry)",
                    st.count,
                    st.min_offset,
                    st.max_offset,
                    in_raw.get(&(t.as_str(), *p)).copied().unwrap_or(0),
                    range - st.count
                ));
            }
        }
    }
    if m.failed_deliveries > 0 {
        s.producer.push(format!(
            "the simulator saw {} deliveries fail or time out: {}",
            m.failed_deliveries,
            examples(&m.delivery_errors)
        ));
    }

    // Injected bad records are at offsets the broker confirmed: each must be a dead letter with a
    // reason its kind maps to, whatever else the manifest missed.
    let by_id: HashMap<&str, &DeadLetter> = std
        .dead_letters
        .iter()
        .filter_map(|d| d.msg_id.as_deref().map(|id| (id, d)))
        .collect();
    let mut wrong = Vec::new();
    let mut lost = Vec::new();
    for b in &m.bad {
        *s.bad_by_kind.entry(b.kind.clone()).or_default() += 1;
        let id = model::naming::msg_id(&b.topic, b.partition, b.offset);
        match by_id.get(id.as_str()) {
            None => lost.push(format!("{id} ({})", b.kind)),
            Some(d) if !expected_reasons(&b.kind).contains(&d.reason.as_str()) => {
                wrong.push(format!("{id}: {} → {}", b.kind, d.reason));
            }
            Some(_) => {}
        }
    }
    if !lost.is_empty() {
        s.pipeline.push(format!(
            "{} bad records have no dead letter: {}",
            lost.len(),
            examples(&lost)
        ));
    }
    if !wrong.is_empty() {
        s.pipeline.push(format!(
            "{} dead letters have an unexpected reason: {}",
            wrong.len(),
            examples(&wrong)
        ));
    }

    // Content counts: the pipeline's when the manifest knows every record, else the producer's.
    let (blame, note) = if s.unconfirmed == 0 {
        (&mut s.pipeline, String::new())
    } else {
        (
            &mut s.producer,
            format!(
                " (the manifest does not know {} records of its ranges)",
                s.unconfirmed
            ),
        )
    };
    let expect = [
        ("buffer_meta", m.delivered(), "records delivered"),
        ("log_meta", m.good_records, "good records"),
        ("lib_server_lobby", m.participant_rows, "participant rows"),
        ("lib_server_game", m.attack_rows, "attack rows"),
    ];
    for (model, want, what) in expect {
        let row = s.rows.entry(model).or_default();
        row.manifest = Some(want);
        // buffer_meta against the manifest is the undercount itself, reported per partition.
        if row.got != want && model != "buffer_meta" {
            blame.push(format!(
                "{model}: {} rows, the manifest counts {want} {what}{note}",
                row.got
            ));
        }
    }
    let dead = std.dead_letters.len() as u64;
    if dead != m.bad_records {
        let bad: BTreeSet<String> = m
            .bad
            .iter()
            .map(|b| model::naming::msg_id(&b.topic, b.partition, b.offset))
            .collect();
        let extra: Vec<String> = std
            .dead_letters
            .iter()
            .filter(|d| d.msg_id.as_ref().is_none_or(|id| !bad.contains(id)))
            .map(|d| format!("{} ({})", d.msg_id.as_deref().unwrap_or("?"), d.reason))
            .collect();
        blame.push(format!(
            "{dead} dead letters, {} bad records injected; not injected: {}{note}",
            m.bad_records,
            examples(&extra)
        ));
    }
}

#[cfg(test)]
mod tests;
