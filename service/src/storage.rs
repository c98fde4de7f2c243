//! Blob storage from a URL, through object_store's own parsing of Azure settings.
//!
//! - `az://{container}` (also `abfs[s]://`, `azure://`, `https://{acct}.blob.core.windows.net/{c}`):
//!   Azure Blob / ADLS Gen2. Credentials and account come from object_store's `AZURE_*`
//!   variables (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY`,
//!   `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`/`AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
//!   managed identity, `AZURE_USE_AZURE_CLI`; emulator: `AZURE_STORAGE_USE_EMULATOR=true` and
//!   `AZURITE_BLOB_STORAGE_URL`).
//! - `file:///abs/path`: a local folder (created if missing).
//! - `memory://`: in-process, for tests and benchmarks.

use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL is not one we know how to open.
    #[error(
        "{var}={url} is not a storage URL: {why} (use az://CONTAINER, file:///ABS/PATH or memory://)"
    )]
    BadUrl {
        /// The variable the URL came from.
        var: &'static str,
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// object_store rejected the settings.
    #[error("{var}={url}: cannot open storage: {reason}")]
    Open {
        /// The variable the URL came from (redacted).
        var: &'static str,
        /// The URL.
        url: String,
        /// object_store's error text, with the URL's secrets redacted (it may quote the URL).
        reason: String,
    },
}

/// Opens the store at `url`; `var` names the setting it came from, for error messages.
pub fn open(var: &'static str, url: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    // Error messages carry the URL redacted: a SAS token in its query must never be printed.
    let shown = crate::secret::redact_url(url);
    let parsed = url::Url::parse(url).map_err(|e| StorageError::BadUrl {
        var,
        url: shown.clone(),
        why: e.to_string(),
    })?;
    let open_err = |source: object_store::Error| StorageError::Open {
        var,
        url: shown.clone(),
        reason: source.to_string().replace(url, &shown),
    };
    match parsed.scheme() {
        "memory" => Ok(Arc::new(InMemory::new())),
        "file" => {
            let path = parsed.to_file_path().map_err(|_| StorageError::BadUrl {
                var,
                url: shown.clone(),
                why: "file URL must be an absolute path".to_owned(),
            })?;
            std::fs::create_dir_all(&path).map_err(|e| StorageError::BadUrl {
                var,
                url: shown.clone(),
                why: format!("cannot create {}: {e}", path.display()),
            })?;
            let fs = LocalFileSystem::new_with_prefix(&path).map_err(open_err)?;
            Ok(Arc::new(fs))
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" | "https" | "http" => {
            let store = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(open_err)?;
            Ok(Arc::new(store))
        }
        other => Err(StorageError::BadUrl {
            var,
            url: shown.clone(),
            why: format!("unknown scheme `{other}`"),
        }),
    }
}

/// A readiness check: lists one entry of the container. Maps "not found" to a clear message.
pub async fn probe(store: &dyn ObjectStore, what: &str) -> Result<(), String> {
    match store.list(None).next().await {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(object_store::Error::NotFound { .. })) => Err(format!(
            "{what}: container not found (run `scripts/stack up` or create it)"
        )),
        Some(Err(e)) => Err(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_schemes_naming_the_variable() {
        let err = open("RAW_URL", "ftp://x").expect_err("error");
        assert!(
            err.to_string()
                .starts_with("RAW_URL=ftp://x/ is not a storage URL"),
            "{err}"
        );
    }

    #[test]
    fn errors_never_echo_a_sas_token() {
        let err = open("RAW_URL", "ftp://raw?sv=1&sig=c2VjcmV0").expect_err("error");
        let text = err.to_string();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(
            text.starts_with("RAW_URL=ftp://raw/?sv=***&sig=*** is not a storage URL"),
            "{text}"
        );
    }

    #[test]
    fn opens_memory_and_file_stores() {
        assert!(open("RAW_URL", "memory://").is_ok());
        let dir = std::env::temp_dir().join(format!("service-storage-{}", std::process::id()));
        let url = format!("file://{}", dir.display());
        let opened = open("RAW_URL", &url).is_ok();
        let made = dir.is_dir();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(opened);
        assert!(made);
    }
}
