//! The results file: one JSON object per line, each with a `bench` field naming what measured it
//! (`latency`, `kcat`, `machine`, and whatever the worker, transformer and simulator benches
//! print). `bench/run` appends every tool's JSON lines to one file; the plot and the report read it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

/// Errors reading or appending the results file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("reading results {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("appending to results {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result did not serialize.
    #[error("serializing a result for {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// Appends `result` as one JSON line to `path`, creating its folder.
pub fn append(path: &Path, result: &impl Serialize) -> Result<(), ResultsError> {
    let write = |source| ResultsError::Write {
        path: path.to_owned(),
        source,
    };
    let line = serde_json::to_string(result).map_err(|source| ResultsError::Encode {
        path: path.to_owned(),
        source,
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write)?;
    writeln!(file, "{line}").map_err(write)
}

/// Every JSON object line of `path`; other lines (tables, progress text) are skipped, because the
/// benches print human-readable output next to their JSON lines.
pub fn read(path: &Path) -> Result<Vec<Map<String, Value>>, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse(&text))
}

/// The JSON object lines of `text`.
pub fn parse(text: &str) -> Vec<Map<String, Value>> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
        .collect()
}

/// The lines whose `bench` field is `name`.
pub fn of<'a>(
    lines: &'a [Map<String, Value>],
    name: &'a str,
) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    lines
        .iter()
        .filter(move |l| l.get("bench").and_then(Value::as_str) == Some(name))
}

/// A number field (integers and floats alike).
pub fn num(line: &Map<String, Value>, key: &str) -> Option<f64> {
    line.get(key).and_then(Value::as_f64)
}

/// A text field.
pub fn text<'a>(line: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    line.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_non_json_lines_and_keeps_objects() {
        let lines =
            parse("| table | row |\n{\"bench\":\"kcat\",\"records\":5}\nnot json {\n{broken\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(of(&lines, "kcat").count(), 1);
        assert_eq!(num(&lines[0], "records"), Some(5.0));
    }

    #[test]
    fn append_then_read_round_trips() {
        let path = std::env::temp_dir()
            .join(testkit::unique("bench-results"))
            .join("r.jsonl");
        append(&path, &serde_json::json!({"bench": "a", "x": 1.5})).expect("append");
        append(&path, &serde_json::json!({"bench": "b", "name": "n"})).expect("append");
        let lines = read(&path).expect("read");
        assert_eq!(num(&lines[0], "x"), Some(1.5));
        assert_eq!(text(&lines[1], "name"), Some("n"));
        std::fs::remove_dir_all(path.parent().expect("dir")).expect("clean up");
    }
}
