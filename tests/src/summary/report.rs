//! The text of a summary: Markdown tables, the problems and a one-line verdict.

use std::collections::BTreeSet;
use std::fmt;

use super::Summary;

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        writeln!(f, "| records per topic | produced (manifest) | in raw |")?;
        writeln!(f, "|---|---:|---:|")?;
        let topics: BTreeSet<&String> = self
            .raw_records
            .keys()
            .chain(self.produced.iter().flat_map(|p| p.keys()))
            .collect();
        for t in topics {
            let produced = self
                .produced
                .as_ref()
                .map(|p| p.get(t).copied().unwrap_or(0));
            writeln!(
                f,
                "| {t} | {} | {} |",
                cell(produced),
                self.raw_records.get(t).copied().unwrap_or(0)
            )?;
        }
        writeln!(
            f,
            "\nraw blobs: {}   unprocessed: {}   poisoned: {}",
            self.raw_blobs,
            self.unprocessed.len(),
            self.poisoned.len()
        )?;
        writeln!(f, "\n| model | rows | expected |")?;
        writeln!(f, "|---|---:|---:|")?;
        for (m, (got, want)) in &self.rows {
            let mark = if want.is_some_and(|w| w != *got) {
                " ✗"
            } else {
                ""
            };
            writeln!(f, "| {m} | {got} | {}{mark} |", cell(*want))?;
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
        for p in &self.problems {
            writeln!(f, "PROBLEM: {p}")?;
        }
        if self.ok() {
            writeln!(
                f,
                "VERDICT: OK — every record landed once, rows match, bad input dead-lettered"
            )
        } else {
            writeln!(f, "VERDICT: FAILED — {} problem(s)", self.problems.len())
        }
    }
}
