//! `transformer backfill` at a terminal: a run of [`crate::runs`] with a progress bar on stderr
//! (hidden when stderr is not a terminal), then its summary in words.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::runs::{self, RunContext, RunRequest, RunStatus};

/// Runs the backfill `req` to its end (or `shutdown`), drawing its progress.
pub async fn run(ctx: &RunContext, req: RunRequest, shutdown: &CancellationToken) -> RunStatus {
    let bar = ProgressBar::new(0);
    // Progress goes to stderr, and only for people: hidden when stderr is not a terminal.
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} blobs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let status = Mutex::new(RunStatus::new(
        uuid::Uuid::new_v4().simple().to_string(),
        req,
    ));
    let b = Arc::new(bar);
    let on_progress = {
        let b = b.clone();
        move |s: &RunStatus| {
            b.set_length(s.progress.total);
            b.set_position(s.progress.done);
            b.set_message(format!(
                "{} records, {} dead",
                s.counts.records,
                s.counts.dead_letters()
            ));
        }
    };
    runs::execute(ctx, &status, shutdown, &on_progress).await;
    b.finish();
    status.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// The run's outcome in words, on stderr.
pub fn print_summary(s: &RunStatus) {
    let c = &s.counts;
    eprintln!(
        "backfill {:?}: {} blobs ({} failed), {} records, {} good, {} dead letters",
        s.state,
        s.blobs_ok,
        s.blobs_failed,
        c.records,
        c.good,
        c.dead_letters()
    );
    for (model, rows) in &c.rows {
        eprintln!("  {model}: {rows} rows");
    }
    for (reason, n) in &c.dead_by_reason {
        eprintln!("  dead {reason}: {n}");
    }
    for e in &s.errors {
        eprintln!("  error: {e}");
    }
}
