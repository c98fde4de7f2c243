//! `transformer`: wires config, telemetry and one of the triggers (see the library docs).

use std::net::SocketAddr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use transformer::app;
use transformer::config::Config;
use transformer::process::{Delivery, process_blob_as};
use transformer::runs::{RunContext, RunRegistry, RunRequest, RunState};
use transformer::serve::{Handler, ServeOptions};
use transformer::watch::Watcher;

/// Raw JSON batches → one Delta table (or Parquet file) per log model.
///
/// Every option, before or after the command, overrides the environment variable named in
/// brackets (an empty variable counts as unset). `RUNS_TOKEN` is read from the environment only,
/// and a SAS token or password in `--raw-url` or `--standard-url` is refused.
/// The function package's allocator (feature `mimalloc`); otherwise the system's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "transformer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The knobs.
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Azure Functions custom handler on FUNCTIONS_CUSTOMHANDLER_PORT (POST /{function}, /runs, ops).
    Serve,
    /// Poll RAW_URL and transform each new blob version once (ops and /runs on METRICS_ADDR).
    Watch {
        /// Transform every raw blob without a receipt, print a JSON summary and exit (exit 1
        /// if a blob was poisoned): the scheduled counterpart of `worker --once`.
        #[arg(long)]
        once: bool,
    },
    /// Re-transform the raw blobs whose hour overlaps [--from, --to), with a progress bar.
    Backfill {
        /// Start, RFC 3339 (inclusive), e.g. 2024-01-14T00:00:00Z.
        #[arg(long)]
        from: DateTime<Utc>,
        /// End, RFC 3339 (exclusive).
        #[arg(long)]
        to: DateTime<Utc>,
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only raw names under this prefix.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Delta mode: commit the staged blobs (what the timer function does) and print the round.
    Commit,
    /// Delta mode: rewrite the small files of closed partitions into files of about
    /// COMPACT_TARGET_MB, one commit per partition; prints what was done per partition.
    Compact {
        /// Only this table (e.g. lib_server_game).
        #[arg(long)]
        table: Option<String>,
        /// Only this partition (yyyy-mm-dd), compacted now whatever its age.
        #[arg(long, conflicts_with = "older_than")]
        partition: Option<String>,
        /// A partition is closed once its day ended and nothing was committed to it for this
        /// long (36h, 30m, 0s); default COMPACT_MIN_AGE_MS.
        #[arg(long, value_parser = transformer::maintenance::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
    /// Delta mode: delete data files no snapshot within the retention needs (removed from the
    /// log, or never committed), keeping staged ones; prints what went per table.
    Vacuum {
        /// Keep files removed (or written) less than this many hours ago. Below 168 (a week)
        /// needs --force.
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
        /// Allow a retention below a week (readers of older snapshots may fail).
        #[arg(long)]
        force: bool,
        /// Print what would be deleted without deleting it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Transform one raw blob by name (relative to RAW_URL), replacing its rows, and print its
    /// summary.
    Transform {
        /// e.g. lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.json.gz
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = service::config::parse()?;
    let settings = cli.config.validate()?;
    service::telemetry::init_logs(settings.log_format);
    let metrics = service::telemetry::init_metrics();
    let stores = app::stores(&settings)?;
    let shutdown = service::shutdown::on_signals();
    let owner = app::owner_id();
    let lakehouse = app::lakehouse(&settings, &stores);
    let ctx = RunContext {
        stores: stores.clone(),
        transform: settings.transform,
        concurrency: settings.watch.concurrency,
        owner: owner.clone(),
        lakehouse: lakehouse.clone(),
    };
    let export =
        service::appinsights::Export::start(settings.metrics_export.clone(), &metrics, &shutdown);
    let ops = app::ops_router(metrics, &stores)
        .merge(RunRegistry::new(ctx.clone(), settings.runs.clone(), shutdown.clone()).router());

    // Every command's outcome, then the exporter's last flush.
    let result: anyhow::Result<()> = async {
        match cli.command {
            Command::Serve => {
                let handler = Handler {
                    stores,
                    transform: settings.transform,
                    owner,
                };
                let addr = SocketAddr::from(([127, 0, 0, 1], settings.port));
                let mut options = ServeOptions::new(&settings.raw_url, settings.watch.concurrency);
                if let Some((lakehouse, _)) = &lakehouse {
                    options = options
                        .with_lakehouse(lakehouse.clone())
                        .with_maintenance(settings.maintenance.clone());
                }
                let (bound, server) = service::ops::bind(
                    addr,
                    ops.merge(handler.router_with(options)),
                    shutdown.clone(),
                )
                .await?;
                tracing::info!(event = "serve_started", addr = %bound);
                server.await?;
            }
            Command::Watch { once } => {
                let (bound, server) =
                    service::ops::bind(settings.metrics_addr, ops, shutdown.clone()).await?;
                tracing::info!(event = "ops_listening", addr = %bound);
                if settings.runs.token.is_none() && !bound.ip().is_loopback() {
                    transformer::telemetry::runs_unauthenticated(bound);
                }
                let server = tokio::spawn(server);
                let mut watcher = Watcher::new(stores, settings.watch.clone(), settings.transform);
                watcher.owner = owner;
                watcher.once = once;
                if let Some((lakehouse, every)) = lakehouse {
                    watcher = watcher
                        .with_lakehouse(lakehouse, every)
                        .with_maintenance(settings.maintenance.clone());
                }
                let stats = watcher.stats.clone();
                let mut run = tokio::spawn(watcher.run(shutdown.clone()));
                if once {
                    // The pass ends by itself (or on a signal, then as the daemon drains).
                    let finished = tokio::select! {
                        _ = shutdown.cancelled() => false,
                        _ = &mut run => true,
                    };
                    if !finished {
                        app::drain(run, settings.shutdown_grace).await;
                    }
                    shutdown.cancel();
                    server.await??;
                    let summary = stats.summary();
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    if summary.poisoned > 0 {
                        anyhow::bail!(
                            "{} raw blob(s) were poisoned: see _poison/ in STANDARD_URL",
                            summary.poisoned
                        );
                    }
                    return Ok(());
                }
                shutdown.cancelled().await;
                app::drain(run, settings.shutdown_grace).await;
                server.await??;
            }
            Command::Backfill {
                from,
                to,
                topic,
                prefix,
            } => {
                let req = RunRequest {
                    from,
                    to,
                    topic,
                    prefix,
                };
                req.validate()?;
                let (_, server) =
                    service::ops::bind(settings.metrics_addr, ops, shutdown.clone()).await?;
                tokio::spawn(server);
                let status = transformer::backfill::run(&ctx, req, &shutdown).await;
                shutdown.cancel();
                println!("{}", serde_json::to_string_pretty(&status)?);
                transformer::backfill::print_summary(&status);
                if status.state != RunState::Succeeded {
                    anyhow::bail!("backfill finished with {} error(s)", status.errors.len());
                }
            }
            Command::Commit => {
                let Some((lakehouse, _)) = lakehouse else {
                    anyhow::bail!(
                        "STANDARD_FORMAT is parquet: nothing is staged; set STANDARD_FORMAT=delta"
                    );
                };
                let round = lakehouse.commit_staged().await?;
                println!("{}", serde_json::to_string_pretty(&round)?);
            }
            Command::Compact {
                table,
                partition,
                older_than,
            } => {
                let Some((lakehouse, _)) = lakehouse else {
                    anyhow::bail!("STANDARD_FORMAT is parquet: there are no Delta tables to compact");
                };
                let mut opts = settings
                    .maintenance
                    .compact_all(settings.transform.compression);
                if let Some(name) = table {
                    let t = transformer::delta::schema::Table::from_name(&name)
                        .with_context(|| format!("--table {name}: no such table"))?;
                    opts.table = Some(t);
                }
                if let Some(p) = &partition {
                    chrono::NaiveDate::parse_from_str(p, "%Y-%m-%d")
                        .with_context(|| format!("--partition {p}: not a date (yyyy-mm-dd)"))?;
                }
                opts.partition = partition;
                if let Some(age) = older_than {
                    opts.min_age = age;
                }
                let done = transformer::maintenance::compact_once(&lakehouse, &opts).await?;
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
            Command::Vacuum {
                retention_hours,
                force,
                dry_run,
            } => {
                let Some((lakehouse, _)) = lakehouse else {
                    anyhow::bail!("STANDARD_FORMAT is parquet: there are no Delta tables to vacuum");
                };
                let retention = std::time::Duration::from_secs(retention_hours.saturating_mul(3600));
                let done = lakehouse.vacuum(retention, force, dry_run).await?;
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
            Command::Transform { name } => {
                let p = process_blob_as(
                    &stores,
                    &name,
                    settings.transform,
                    "transform",
                    Delivery::Replay,
                )
                .await
                .with_context(|| format!("transforming {name}"))?;
                if let Some((lakehouse, _)) = lakehouse {
                    lakehouse.commit_staged().await?;
                }
                let summary = serde_json::json!({"blob": p.blob, "etl_id": p.etl_id, "etag": p.etag,
                    "counts": p.counts, "outputs": p.outputs, "duration_ms": p.duration.as_millis() as u64});
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
        }
        Ok(())
    }
    .await;
    export.finish().await;
    result
}
