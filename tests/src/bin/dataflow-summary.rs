//! `dataflow-summary`: waits until a simulator run has landed in raw and been transformed into
//! standard, prints the comparison tables and two verdicts (pipeline, producer). Exit 0 when
//! both hold, 1 when the pipeline's fails, 2 when it did not settle in time, 3 when only the
//! producer's fails (the manifest undercounts what Kafka holds); `--help` says the same.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use tests::summary::{SummaryError, wait_and_summarize};
use tests::summary_config::{Cli, Config, Settings};

/// The exit statuses, shown by `--help`.
const EXIT_CODES: &str = "\
Exit status:
  0  both verdicts OK
  1  pipeline FAILED: an offset of the manifest's ranges is missing or duplicated in raw or the
     tables, a blob is untransformed or poisoned, a row count disagrees with raw (or with a
     manifest that confirmed every record), a bad record is not dead-lettered (the producer
     verdict may have failed too)
  2  the pipeline did not settle within --summary-timeout-secs
  3  producer only: the pipeline kept its promise, but the simulator's manifest disagrees with
     what Kafka holds (it confirmed fewer deliveries than its offset ranges hold, e.g. timed-out
     delivery reports of stored records, retries; or it saw deliveries fail)";

/// Exit status when only the producer verdict failed.
const PRODUCER_ONLY: u8 = 3;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let matches = Cli::command().after_help(EXIT_CODES).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let settings = Settings::merge(service::config::from_env::<Config>()?, cli)?;
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
