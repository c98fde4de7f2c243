//! `dataflow-summary`: waits until a simulator run has landed in raw and been transformed into
//! standard, prints the comparison table and a verdict; exit 1 when something is missing or
//! duplicated, 2 when the pipeline did not settle in time.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tests::summary::{SummaryError, wait_and_summarize};
use tests::summary_config::{Cli, Config, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
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
            Ok(if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
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
