//! Turns a bench tool's stdout into result lines: JSON object lines are kept as they are; when a
//! tool prints no JSON at all, its Markdown tables become one object per row, keyed by the
//! normalized header (`MB/s/core` → `mb_s_core`). Every line gets the run id and, when it has
//! none, the bench name, so the report can tell runs and tools apart.

use std::io::Read;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::config::CollectConfig;

/// `bench collect`: reads a tool's stdout on stdin and appends its result lines to
/// `BENCH_RESULTS`; fails when there are none.
pub fn command(config: CollectConfig) -> anyhow::Result<()> {
    let mut output = String::new();
    std::io::stdin()
        .read_to_string(&mut output)
        .context("reading the tool's output on stdin")?;
    let lines = collect(&output, &config.bench_name, &config.bench_run);
    let results = &config.results.bench_results;
    for line in &lines {
        crate::results::append(results, line)?;
    }
    eprintln!(
        "bench collect: {} {} result lines → {}",
        lines.len(),
        config.bench_name,
        results.display()
    );
    if lines.is_empty() {
        anyhow::bail!(
            "no result lines (JSON objects or Markdown table rows) in the {} output",
            config.bench_name
        );
    }
    Ok(())
}

/// Result lines found in `output`, tagged with `run` and (when missing) `bench`.
pub fn collect(output: &str, bench: &str, run: &str) -> Vec<Map<String, Value>> {
    let json = crate::results::objects(output);
    let lines = if json.is_empty() {
        tables(output)
    } else {
        json
    };
    lines
        .into_iter()
        .map(|mut l| {
            l.entry("bench").or_insert_with(|| Value::from(bench));
            l.insert("run".into(), Value::from(run));
            l
        })
        .collect()
}

/// `MB/s/core` → `mb_s_core`, `peak RSS MB` → `peak_rss_mb`, `rows/s (model rows)` → `rows_s_model_rows`.
pub fn normalize(header: &str) -> String {
    let mut out = String::new();
    for c in header.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

fn is_separator(cells: &[&str]) -> bool {
    cells
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// Every row of every Markdown table in `text` as an object.
pub fn tables(text: &str) -> Vec<Map<String, Value>> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut pending: Option<Vec<String>> = None;
    for line in text.lines() {
        let Some(c) = cells(line) else {
            header = None;
            pending = None;
            continue;
        };
        if is_separator(&c) {
            header = pending.take();
            continue;
        }
        match &header {
            Some(h) => {
                let row: Map<String, Value> = h
                    .iter()
                    .zip(&c)
                    .filter(|(_, v)| !v.is_empty() && **v != "-" && **v != "–")
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.parse::<f64>()
                                .map_or_else(|_| Value::from(*v), Value::from),
                        )
                    })
                    .collect();
                rows.push(row);
            }
            None => pending = Some(c.iter().map(|h| normalize(h)).collect()),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_rows_become_objects_with_normalized_keys_and_numbers() {
        let out = "| topic | MB/s/core | peak RSS MB |\n|---|---:|---:|\n| lib.server.game | 123.4 | - |\n\npeak RSS at exit: 5 MB\n";
        let lines = collect(out, "transformer", "r1");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["topic"], "lib.server.game");
        assert_eq!(lines[0]["mb_s_core"], 123.4);
        assert!(!lines[0].contains_key("peak_rss_mb"), "a dash is no value");
        assert_eq!(
            (lines[0]["bench"].as_str(), lines[0]["run"].as_str()),
            (Some("transformer"), Some("r1"))
        );
    }

    #[test]
    fn json_lines_win_over_tables_and_keep_their_own_bench_name() {
        let out = "| a |\n|---|\n| 1 |\n{\"bench\":\"worker\",\"x\":1}\n{\"y\":2}\n";
        let lines = collect(out, "fallback", "r2");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["bench"], "worker");
        assert_eq!(lines[1]["bench"], "fallback");
        assert!(lines.iter().all(|l| l["run"] == "r2"));
    }

    #[test]
    fn headers_normalize_to_snake_case() {
        assert_eq!(normalize("rows/s (model rows)"), "rows_s_model_rows");
        assert_eq!(normalize(" raw JSON MB "), "raw_json_mb");
    }
}
