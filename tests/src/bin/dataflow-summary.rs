//! `dataflow-summary`: waits until a simulator run has landed in raw and been transformed into
//! standard, prints the comparison tables and two verdicts (pipeline, producer). Exit 0 when
//! both hold, 1 when the pipeline's fails, 2 when it did not settle in time, 3 when only the
//! producer's fails (the manifest undercounts what Kafka holds); `--help` says the same.

use std::process::ExitCode;

use anyhow::Context;
use tests::summary::{SummaryError, wait_and_summarize};
use tests::summary_config::Settings;

/// Exit status when only the producer verdict failed.
const PRODUCER_ONLY: u8 = 3;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let settings = Settings::from_args()?;
    let manifest = match &settings.manifest_path {
        Some(p) => Some(simulator::Manifest::read(p)?),
        None => None,
    };
    let raw = service::storage::open("RAW_URL", &settings.raw_url)?;
    let standard = service::storage::open("STANDARD_URL", &settings.standard_url)?;
    if let Some(m) = &manifest {
        eprintln!(
            "summary: waiting up to {:?} for {} records ({} bad) of a {} run to land in {} and {}",
            settings.timeout,
            m.delivered(),
            m.bad_records,
            m.mode,
            settings.raw_url,
            settings.standard_url
        );
    }
    let progress = |p: &str| eprintln!("summary: waiting: {p}");
    match wait_and_summarize(raw, standard, manifest.as_ref(), settings.timeout, progress).await {
        Ok(summary) => {
            println!("{summary}");
            Ok(match (summary.ok(), summary.producer_ok()) {
                (true, true) => ExitCode::SUCCESS,
                (true, false) => {
                    eprintln!(
                        "summary: the pipeline is whole; only the producer's manifest disagrees \
                         with Kafka (exit {PRODUCER_ONLY})"
                    );
                    ExitCode::from(PRODUCER_ONLY)
                }
                (false, _) => ExitCode::from(1),
            })
        }
        Err(e @ SummaryError::Timeout { .. }) => {
            eprintln!("summary: {e}");
            println!("VERDICT: FAILED — the pipeline did not settle");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e).context("reading raw and standard"),
    }
}
