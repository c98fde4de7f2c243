//! The text of a summary: Markdown tables, then each verdict under its heading with its
//! problems, then a one-line `VERDICT:` saying which one failed.

use std::fmt;

use super::Summary;

impl Summary {
    /// The last line: which verdict failed, if any.
    fn verdict_line(&self) -> String {
        match (self.ok(), self.producer_ok()) {
            (true, true) if !self.has_manifest => "VERDICT: OK — every record in raw landed \
                                                   once and the tables agree with raw (no \
                                                   manifest: producer not judged)"
                .to_owned(),
            (true, true) => "VERDICT: OK — every record landed once, rows match, bad input \
                             dead-lettered, and the manifest accounts for every record"
                .to_owned(),
            (true, false) => format!(
                "VERDICT: FAILED (producer only) — the pipeline kept its promise; the producer's \
                 manifest disagrees with what Kafka holds ({} problem(s))",
                self.producer.len()
            ),
            (false, producer) => format!(
                "VERDICT: FAILED (pipeline) — {} pipeline problem(s){}",
                self.pipeline.len(),
                if producer {
                    String::new()
                } else {
                    format!(
                        "; the producer's manifest disagrees too ({})",
                        self.producer.len()
                    )
                }
            ),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        writeln!(
            f,
            "| records per topic | confirmed (manifest) | offsets in its ranges | in raw |"
        )?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for (t, r) in &self.records {
            writeln!(
                f,
                "| {t} | {} | {} | {} |",
                cell(r.confirmed),
                cell(r.in_range),
                r.in_raw
            )?;
        }
        writeln!(
            f,
            "\nraw blobs: {}   unprocessed: {}   poisoned: {}",
            self.raw_blobs,
            self.unprocessed.len(),
            self.poisoned.len()
        )?;
        writeln!(f, "\n| model | rows | from raw | manifest |")?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for (m, r) in &self.rows {
            let vs = |want: Option<u64>| {
                let mark = if want.is_some_and(|w| w != r.got) {
                    " ✗"
                } else {
                    ""
                };
                format!("{}{mark}", cell(want))
            };
            writeln!(
                f,
                "| {m} | {} | {} | {} |",
                r.got,
                vs(r.from_raw),
                vs(r.manifest)
            )?;
        }
        writeln!(f, "\n| dead letters by reason | count |")?;
        writeln!(f, "|---|---:|")?;
        for (r, n) in &self.dead_by_reason {
            writeln!(f, "| {r} | {n} |")?;
        }
        let dead: u64 = self.dead_by_reason.values().sum();
        let bad: u64 = self.bad_by_kind.values().sum();
        writeln!(f, "| total | {dead} (injected bad records: {bad}) |")?;
        if !self.bad_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .bad_by_kind
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            writeln!(f, "injected kinds: {}", kinds.join(", "))?;
        }
        writeln!(f, "\nduplicates in buffer_meta: {}", self.duplicates.len())?;

        writeln!(
            f,
            "\n## Pipeline: every offset of each partition's range exactly once in raw and in the tables"
        )?;
        for p in &self.pipeline {
            writeln!(f, "PROBLEM: {p}")?;
        }
        if self.ok() {
            writeln!(f, "PIPELINE: OK")?;
        } else {
            writeln!(f, "PIPELINE: FAILED — {} problem(s)", self.pipeline.len())?;
        }

        writeln!(
            f,
            "\n## Producer: the manifest's counts against what Kafka holds"
        )?;
        for p in &self.producer {
            writeln!(f, "PRODUCER PROBLEM: {p}")?;
        }
        if !self.has_manifest {
            writeln!(f, "PRODUCER: not judged (no manifest)")?;
        } else if self.producer_ok() {
            writeln!(f, "PRODUCER: OK")?;
        } else {
            writeln!(f, "PRODUCER: FAILED — {} problem(s)", self.producer.len())?;
        }
        writeln!(f, "\n{}", self.verdict_line())
    }
}
