//! The verdict: a scan and the outputs it points at, compared with the manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use object_store::ObjectStore;
use simulator::Manifest;

use super::{
    DeadLetter, RawBlob, Scan, Scope, Standard, SummaryError, expected_reasons, poisoned, raw_gaps,
    read_standard,
};

/// The comparison of a run with its manifest.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records the manifest says were produced, per topic (`None` without a manifest).
    pub produced: Option<BTreeMap<String, u64>>,
    /// Distinct scoped records found in raw, per topic.
    pub raw_records: BTreeMap<String, u64>,
    /// Raw blobs holding scoped records.
    pub raw_blobs: u64,
    /// Scoped raw blobs without a receipt.
    pub unprocessed: Vec<String>,
    /// Scoped raw blobs with a poison entry.
    pub poisoned: Vec<String>,
    /// Rows per model and the expected number (`None` when unknown).
    pub rows: BTreeMap<&'static str, (u64, Option<u64>)>,
    /// Dead letters per reason code.
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Injected bad records per simulator kind.
    pub bad_by_kind: BTreeMap<String, u64>,
    /// `msg_id`s seen more than once in `buffer_meta`.
    pub duplicates: Vec<String>,
    /// Everything that is wrong; empty means the run is whole.
    pub problems: Vec<String>,
    /// The raw data read back.
    pub standard: Standard,
}

impl Summary {
    /// Whether nothing is missing, duplicated or misclassified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
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

/// Compares the scan (and the outputs it points at) with the manifest.
pub async fn summarize(
    scan: &Scan,
    standard: &dyn ObjectStore,
    manifest: Option<&Manifest>,
) -> Result<Summary, SummaryError> {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let blobs: Vec<&RawBlob> = scan.blobs_in(&scope).collect();
    let mut s = Summary {
        raw_blobs: blobs.len() as u64,
        ..Summary::default()
    };
    // Raw: each scoped offset in exactly one line.
    let mut lines: BTreeMap<(String, i32, i64), u32> = BTreeMap::new();
    for b in &blobs {
        for o in b
            .offsets
            .iter()
            .filter(|o| scope.contains(&b.parsed.topic, b.parsed.partition, **o))
        {
            *lines
                .entry((b.parsed.topic.clone(), b.parsed.partition, *o))
                .or_default() += 1;
        }
        if b.unreadable > 0 {
            s.problems.push(format!(
                "raw blob {} has {} undecodable lines",
                b.name, b.unreadable
            ));
        }
    }
    for ((t, _, _), _) in lines.iter() {
        *s.raw_records.entry(t.clone()).or_default() += 1;
    }
    let raw_dups: Vec<String> = lines
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((t, p, o), n)| format!("{t}+{p}+{o} ×{n}"))
        .collect();
    if !raw_dups.is_empty() {
        s.problems.push(format!(
            "{} records are in raw more than once: {}",
            raw_dups.len(),
            examples(&raw_dups)
        ));
    }
    s.unprocessed = blobs
        .iter()
        .filter(|b| !scan.receipts.contains(&b.name))
        .map(|b| b.name.clone())
        .collect();
    if !s.unprocessed.is_empty() {
        s.problems.push(format!(
            "{} raw blobs have no receipt: {}",
            s.unprocessed.len(),
            examples(&s.unprocessed)
        ));
    }
    let names: BTreeSet<&str> = blobs.iter().map(|b| b.name.as_str()).collect();
    s.poisoned = poisoned(standard)
        .await?
        .into_iter()
        .filter(|p| names.contains(p.as_str()))
        .collect();
    if !s.poisoned.is_empty() {
        s.problems.push(format!(
            "{} raw blobs are poisoned: {}",
            s.poisoned.len(),
            examples(&s.poisoned)
        ));
    }

    let std = read_standard(standard, blobs.iter().copied(), &scope).await?;
    for d in &std.dead_letters {
        *s.dead_by_reason.entry(d.reason.clone()).or_default() += 1;
    }
    s.duplicates = std
        .buffer_msg_ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    s.duplicates.sort();
    if !s.duplicates.is_empty() {
        s.problems.push(format!(
            "{} msg_ids are in buffer_meta more than once: {}",
            s.duplicates.len(),
            examples(&s.duplicates)
        ));
    }
    let buffer_rows = std.rows.get("buffer_meta").copied().unwrap_or(0);
    let dead = std.dead_letters.len() as u64;

    match manifest {
        Some(m) => {
            let produced: BTreeMap<String, u64> = m
                .topics
                .iter()
                .map(|(t, p)| (t.clone(), p.values().map(|s| s.count).sum()))
                .collect();
            for (t, n) in &produced {
                let got = s.raw_records.get(t).copied().unwrap_or(0);
                if got != *n {
                    s.problems
                        .push(format!("topic {t}: {n} records produced, {got} in raw"));
                }
            }
            for gap in raw_gaps(scan, m) {
                s.problems.push(format!("missing in raw: {gap}"));
            }
            s.produced = Some(produced);
            let expect: [(&'static str, u64); 5] = [
                ("etl_meta", s.raw_blobs),
                ("buffer_meta", m.delivered()),
                ("log_meta", m.good_records),
                ("lib_server_lobby", m.participant_rows),
                ("lib_server_game", m.attack_rows),
            ];
            for (model, want) in expect {
                let got = std.rows.get(model).copied().unwrap_or(0);
                s.rows.insert(model, (got, Some(want)));
                if got != want {
                    s.problems
                        .push(format!("{model}: {got} rows, expected {want}"));
                }
            }
            // Every produced record has its buffer_meta row.
            let missing: Vec<String> = m
                .topics
                .iter()
                .flat_map(|(t, parts)| {
                    parts.iter().flat_map(move |(p, st)| {
                        (st.min_offset..=st.max_offset)
                            .map(move |o| model::naming::msg_id(t, *p, o))
                    })
                })
                .filter(|id| !std.buffer_msg_ids.contains_key(id))
                .collect();
            if !missing.is_empty() {
                s.problems.push(format!(
                    "{} records have no buffer_meta row: {}",
                    missing.len(),
                    examples(&missing)
                ));
            }
            // Dead letters are exactly the injected bad records, with a matching reason.
            let mut by_id: HashMap<String, &DeadLetter> = HashMap::new();
            for d in &std.dead_letters {
                if let Some(id) = &d.msg_id {
                    by_id.insert(id.clone(), d);
                }
            }
            let mut wrong = Vec::new();
            let mut lost = Vec::new();
            for b in &m.bad {
                *s.bad_by_kind.entry(b.kind.clone()).or_default() += 1;
                let id = model::naming::msg_id(&b.topic, b.partition, b.offset);
                match by_id.get(&id) {
                    None => lost.push(format!("{id} ({})", b.kind)),
                    Some(d) if !expected_reasons(&b.kind).contains(&d.reason.as_str()) => {
                        wrong.push(format!("{id}: {} → {}", b.kind, d.reason));
                    }
                    Some(_) => {}
                }
            }
            if !lost.is_empty() {
                s.problems.push(format!(
                    "{} bad records have no dead letter: {}",
                    lost.len(),
                    examples(&lost)
                ));
            }
            if !wrong.is_empty() {
                s.problems.push(format!(
                    "{} dead letters have an unexpected reason: {}",
                    wrong.len(),
                    examples(&wrong)
                ));
            }
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
                s.problems.push(format!(
                    "{dead} dead letters, {} bad records injected; not injected: {}",
                    m.bad_records,
                    examples(&extra)
                ));
            }
            if m.failed_deliveries > 0 {
                s.problems.push(format!(
                    "the simulator had {} failed deliveries",
                    m.failed_deliveries
                ));
            }
        }
        None => {
            for (model, got) in &std.rows {
                s.rows.insert(model, (*got, None));
            }
            let raw_total: u64 = s.raw_records.values().sum();
            if buffer_rows != raw_total {
                s.problems.push(format!(
                    "{raw_total} records in raw, {buffer_rows} buffer_meta rows"
                ));
            }
            let log_rows = std.rows.get("log_meta").copied().unwrap_or(0);
            if log_rows + dead != buffer_rows {
                s.problems.push(format!(
                    "log_meta {log_rows} + dead letters {dead} != buffer_meta {buffer_rows}"
                ));
            }
        }
    }
    s.standard = std;
    Ok(s)
}
