//! Vacuum: deletes data files no snapshot within the retention needs.
//!
//! delta-rs plans it (`VacuumMode::Full`, as a dry run): files removed from the log longer ago
//! than the retention, and files never committed whose age passes it. Files a staging manifest
//! names are taken out of the plan (staged, not committed yet: deleting one would lose the blob
//! at its commit), then the rest is deleted, and the keys files of compacted data files that are
//! gone ([`super::compact`]). A retention below [`SAFE_RETENTION`] (Delta's own
//! default, a week: a reader holding an older snapshot, or a time-travel query, needs the files
//! it references) is refused unless forced.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use deltalake::DeltaTableError;
use deltalake::operations::vacuum::VacuumMode;
use object_store::ObjectStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

use super::commit::{CommitError, Lakehouse, RoundSummary};
use super::schema::Table;

/// The retention below which vacuum needs `force` (Delta's `deletedFileRetentionDuration`).
pub const SAFE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What vacuum deleted (or would delete, on a dry run) in one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuumed {
    /// The table.
    pub table: &'static str,
    /// Files deleted (paths relative to the table).
    pub deleted: Vec<String>,
    /// Files in delta-rs's plan kept because a staging manifest names them.
    pub kept_staged: usize,
    /// Keys files of compacted data files that are gone, deleted.
    pub keys_deleted: usize,
}

/// Why vacuum did not run.
#[derive(Debug, thiserror::Error)]
pub enum VacuumError {
    /// The retention is below the safe minimum and not forced.
    #[error(
        "a retention of {hours} h is below {min} h: a reader holding an older snapshot, or a time-travel query, would lose files it needs; pass --force to vacuum anyway"
    )]
    Unsafe {
        /// Asked.
        hours: u64,
        /// Minimum without force.
        min: u64,
    },
    /// Reading the table or the staging manifests failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// delta-rs's planning failed.
    #[error("vacuum of Delta table {table}: {source}")]
    Delta {
        /// The table.
        table: &'static str,
        /// delta-rs's error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Deleting stale keys files of compacted data files failed.
    #[error("vacuum of Delta table {table}'s compaction keys: {source}")]
    Keys {
        /// The table.
        table: &'static str,
        /// What failed.
        #[source]
        source: Box<super::compact::CompactError>,
    },
    /// Deleting a file failed (vacuum is idempotent: run it again).
    #[error("deleting {path} from standard: {source}")]
    Delete {
        /// The file.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
}

impl Lakehouse {
    /// Vacuums every table: see the module docs.
    pub async fn vacuum(
        &self,
        retention: Duration,
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<Vacuumed>, VacuumError> {
        if retention < SAFE_RETENTION && !force {
            return Err(VacuumError::Unsafe {
                hours: retention.as_secs() / 3600,
                min: SAFE_RETENTION.as_secs() / 3600,
            });
        }
        let staged = self.staged_files().await?;
        let mut out = Vec::new();
        for table in Table::ALL {
            let Some(t) = self.load(table).await? else {
                continue;
            };
            let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            let (_, plan) = t
                .vacuum()
                .with_mode(VacuumMode::Full)
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                .with_dry_run(true)
                .await
                .map_err(|source| VacuumError::Delta {
                    table: table.name(),
                    source: Box::new(source),
                })?;
            let mut done = Vacuumed {
                table: table.name(),
                ..Vacuumed::default()
            };
            let store: Arc<dyn ObjectStore> =
                Arc::new(PrefixStore::new(self.standard(), table.name()));
            for file in plan.files_deleted {
                if staged.contains(&format!("{}/{file}", table.name())) {
                    done.kept_staged += 1;
                    continue;
                }
                if !dry_run {
                    match store.delete(&Path::from(file.as_str())).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(source) => {
                            return Err(VacuumError::Delete {
                                path: format!("{}/{file}", table.name()),
                                source,
                            });
                        }
                    }
                }
                done.deleted.push(file);
            }
            if !dry_run {
                done.keys_deleted =
                    self.delete_stale_keys(table)
                        .await
                        .map_err(|e| VacuumError::Keys {
                            table: table.name(),
                            source: Box::new(e),
                        })?;
            }
            crate::telemetry::delta_vacuumed(table.name(), done.deleted.len(), dry_run);
            out.push(done);
        }
        Ok(out)
    }

    /// Every data file a staging manifest names (`{table}/{path}`).
    async fn staged_files(&self) -> Result<HashSet<String>, CommitError> {
        let listed = self.all_staged().await?;
        let manifests = self
            .read_manifests(&listed, &mut RoundSummary::default())
            .await?;
        Ok(manifests
            .iter()
            .flat_map(|m| m.files.iter().map(|f| format!("{}/{}", f.table, f.path)))
            .collect())
    }
}
