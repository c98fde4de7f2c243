//! Pushes the Prometheus metrics to Application Insights (Azure Monitor), where nothing scrapes
//! `/metrics`.
//!
//! On Azure the worker (a Container App) and the transformer (a Functions custom handler, or its
//! watch) run where no Prometheus scrapes them. [`run`] renders the same [`PrometheusHandle`]
//! that `/metrics` serves every interval, and posts one `Microsoft.ApplicationInsights.Metric`
//! envelope per series to the ingestion endpoint's `v2.1/track`, with an Entra ID token from the
//! managed identity: the Application Insights resource has local auth disabled, so the
//! instrumentation key alone is refused.
//!
//! # The contract the alerts rely on
//! Terraform's alerts query `customMetrics` by these names, so they are kept exactly:
//! - the metric name is the Prometheus series name, unchanged; its labels are the envelope's
//!   `properties` (`customDimensions`), as strings;
//! - a counter goes as its increase since the last export of that series that was delivered
//!   (the first export of a series sends its whole value, a decrease, i.e. a restart, sends the
//!   new value); a series whose increase is 0 is not sent;
//! - a gauge (and an untyped sample) goes as its current value, every round;
//! - a histogram or summary goes as `<name>_count` and `<name>_sum`, counted like counters; its
//!   buckets and quantiles are not sent.
//!
//! A round that fails (no token, network, any answer but 200 or 206) is logged
//! (`event = "metrics_export_failed"`) and counted in [`EXPORT_FAILURES_METRIC`], and its
//! increases are not lost: the delivered values stay as they were, so the next round sends the
//! sum. Export never panics and never holds up the service: [`run`] stops at shutdown after one
//! last flush bounded by [`FINAL_FLUSH_TIMEOUT`].
//!
//! # Environment ([`ExportSettings::from_env`])
//! - `APPLICATIONINSIGHTS_CONNECTION_STRING`: `InstrumentationKey=...;IngestionEndpoint=https://...`
//!   (Azure's own name; terraform sets it). Unset or empty: no export.
//! - `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`: the managed identity endpoint App Service,
//!   Functions and Container Apps set. Unset: envelopes go without a token (a local collector or
//!   a test receives them; Azure Monitor refuses them), with a warning at start.
//! - `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` (`ClientId=<guid>;Authorization=AAD`, set by
//!   terraform) or else `AZURE_CLIENT_ID`: the client id of a user-assigned identity.
//! - `CONTAINER_APP_REPLICA_NAME`, `WEBSITE_INSTANCE_ID`, else the hostname: the
//!   `ai.cloud.roleInstance` tag.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use url::Url;

use crate::secret::Secret;

/// The connection string's variable (Azure's own name).
pub const CONNECTION_STRING_VAR: &str = "APPLICATIONINSIGHTS_CONNECTION_STRING";
/// The variable naming the user-assigned identity: `ClientId=<guid>;Authorization=AAD`.
pub const AUTHENTICATION_STRING_VAR: &str = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";
/// The fallback for the user-assigned identity's client id.
pub const AZURE_CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
/// The managed identity endpoint's variable (App Service, Functions, Container Apps).
pub const IDENTITY_ENDPOINT_VAR: &str = "IDENTITY_ENDPOINT";
/// The variable holding the secret the managed identity endpoint wants in `X-IDENTITY-HEADER`.
pub const IDENTITY_HEADER_VAR: &str = "IDENTITY_HEADER";
/// The header that carries [`IDENTITY_HEADER_VAR`]'s value.
pub const IDENTITY_HEADER_NAME: &str = "X-IDENTITY-HEADER";
/// The managed identity endpoint's API version.
pub const IDENTITY_API_VERSION: &str = "2019-08-01";
/// The resource Azure Monitor ingestion tokens are for.
pub const MONITOR_RESOURCE: &str = "https://monitor.azure.com/";
/// The ingestion endpoint when the connection string names none.
pub const DEFAULT_INGESTION_ENDPOINT: &str = "https://dc.services.visualstudio.com/";
/// The export interval services use unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// At most this many envelopes go in one request.
pub const MAX_ENVELOPES_PER_REQUEST: usize = 1000;
/// The counter of failed export requests (token or POST).
pub const EXPORT_FAILURES_METRIC: &str = "service_metrics_export_failures_total";
/// The envelope name of a metric.
pub const METRIC_ENVELOPE_NAME: &str = "Microsoft.ApplicationInsights.Metric";
/// How long the flush at shutdown may take.
pub const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest interval [`run`] uses (a zero interval would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Bounds each HTTP request (token or POST).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A cached token is replaced this long before it expires.
const TOKEN_REFRESH_MARGIN_SECS: u64 = 300;
/// The variables naming this instance, before the hostname.
const ROLE_INSTANCE_VARS: [&str; 2] = ["CONTAINER_APP_REPLICA_NAME", "WEBSITE_INSTANCE_ID"];
/// How much of an error answer's body goes into the error.
const BODY_EXCERPT_CHARS: usize = 500;
/// The per-item status codes of a 206 answer worth sending again (Application Insights' docs).
const RETRIABLE_ITEM_STATUS: [u16; 7] = [408, 429, 439, 500, 502, 503, 504];

/// An Application Insights export error, naming the variable and the fix, or the request.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A connection string part is not `Key=Value`.
    #[error(
        "{var} has a part without `=` (`{part}`): set {var} to the Application Insights connection string as the portal or terraform output shows it (InstrumentationKey=...;IngestionEndpoint=https://...)"
    )]
    MalformedConnectionString {
        /// The variable.
        var: &'static str,
        /// The part.
        part: String,
    },
    /// The connection string has no (or an empty) `InstrumentationKey`.
    #[error(
        "{var} has no InstrumentationKey: set {var} to the Application Insights connection string as the portal or terraform output shows it (InstrumentationKey=...;IngestionEndpoint=https://...)"
    )]
    MissingInstrumentationKey {
        /// The variable.
        var: &'static str,
    },
    /// The connection string's `IngestionEndpoint` is not a URL.
    #[error(
        "{var}: IngestionEndpoint `{value}` is not a URL ({source}): fix {var}, e.g. IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
    )]
    BadIngestionEndpoint {
        /// The variable.
        var: &'static str,
        /// The endpoint as given.
        value: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// The connection string's `IngestionEndpoint` is a URL, but not http(s) with a host.
    #[error(
        "{var}: IngestionEndpoint `{value}` is not an http(s) URL with a host: fix {var}, e.g. IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
    )]
    IngestionEndpointScheme {
        /// The variable.
        var: &'static str,
        /// The endpoint as given.
        value: String,
    },
    /// The managed identity endpoint is not a URL.
    #[error(
        "{var} `{value}` is not a URL ({source}): it is the managed identity endpoint Azure sets; fix or unset it"
    )]
    BadIdentityEndpoint {
        /// The variable.
        var: &'static str,
        /// The endpoint as given.
        value: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// The managed identity endpoint is a URL, but not http(s) with a host.
    #[error(
        "{var} `{value}` is not an http(s) URL with a host: it is the managed identity endpoint Azure sets; fix or unset it"
    )]
    IdentityEndpointScheme {
        /// The variable.
        var: &'static str,
        /// The endpoint as given.
        value: String,
    },
    /// One of the two managed identity variables is set without the other.
    #[error(
        "{set} is set but {unset} is not: the managed identity endpoint needs both (Azure sets both when the app has a managed identity); set {unset} or unset {set}"
    )]
    IncompleteIdentity {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        unset: &'static str,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client for metrics export: {source}")]
    Client {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The token request did not get an answer.
    #[error("managed identity token request to {endpoint} failed: {source}")]
    TokenRequest {
        /// The identity endpoint (without the query).
        endpoint: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The identity endpoint answered with an error status.
    #[error("managed identity endpoint {endpoint} answered {status}: {body}")]
    TokenStatus {
        /// The identity endpoint (without the query).
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The identity endpoint's answer carries no token.
    #[error("managed identity endpoint {endpoint} answered no token: {source}")]
    TokenBody {
        /// The identity endpoint (without the query).
        endpoint: String,
        /// reqwest's (JSON decoding) error.
        #[source]
        source: reqwest::Error,
    },
    /// The envelopes could not be encoded.
    #[error("cannot encode the metric envelopes: {source}")]
    Encode {
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The POST did not get an answer.
    #[error("POST {url} failed: {source}")]
    Post {
        /// The track URL.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The ingestion endpoint answered neither 200 nor 206.
    #[error("POST {url} answered {status}: {body}")]
    Status {
        /// The track URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
}

impl ExportError {
    /// The variable a configuration error is about (the connection string otherwise).
    pub fn var(&self) -> &'static str {
        match self {
            ExportError::MalformedConnectionString { var, .. }
            | ExportError::MissingInstrumentationKey { var }
            | ExportError::BadIngestionEndpoint { var, .. }
            | ExportError::IngestionEndpointScheme { var, .. }
            | ExportError::BadIdentityEndpoint { var, .. }
            | ExportError::IdentityEndpointScheme { var, .. } => var,
            ExportError::IncompleteIdentity { unset, .. } => unset,
            _ => CONNECTION_STRING_VAR,
        }
    }

    /// The HTTP status of an error answer, if the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ExportError::TokenStatus { status, .. } | ExportError::Status { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// The message of `error` followed by those of its sources it does not already contain
/// (reqwest's "error sending request" hides the cause, e.g. "connection refused").
fn report(error: &ExportError) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = std::error::Error::source(cause);
    }
    message
}

/// A parsed Application Insights connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `InstrumentationKey`: the resource the envelopes are for.
    pub instrumentation_key: String,
    /// `IngestionEndpoint` (always ending in `/`), or [`DEFAULT_INGESTION_ENDPOINT`].
    pub ingestion_endpoint: Url,
}

impl ConnectionString {
    /// Parses `InstrumentationKey=...;IngestionEndpoint=https://...;LiveEndpoint=...` (keys in
    /// any case, unknown keys ignored). Without `IngestionEndpoint`, `EndpointSuffix=x` gives
    /// `https://dc.x/`, and without either the endpoint is [`DEFAULT_INGESTION_ENDPOINT`].
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        const VAR: &str = CONNECTION_STRING_VAR;
        let mut key = None;
        let mut endpoint = None;
        let mut suffix = None;
        for part in text.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(ExportError::MalformedConnectionString {
                    var: VAR,
                    part: part.to_owned(),
                });
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => key = Some(value),
                "ingestionendpoint" => endpoint = Some(value),
                "endpointsuffix" => suffix = Some(value),
                _ => {}
            }
        }
        let instrumentation_key = key
            .filter(|k| !k.is_empty())
            .ok_or(ExportError::MissingInstrumentationKey { var: VAR })?
            .to_owned();
        let endpoint_text = match (
            endpoint.filter(|e| !e.is_empty()),
            suffix
                .map(|s| s.trim_matches('.'))
                .filter(|s| !s.is_empty()),
        ) {
            (Some(endpoint), _) => endpoint.to_owned(),
            (None, Some(suffix)) => format!("https://dc.{suffix}/"),
            (None, None) => DEFAULT_INGESTION_ENDPOINT.to_owned(),
        };
        let mut ingestion_endpoint =
            Url::parse(&endpoint_text).map_err(|source| ExportError::BadIngestionEndpoint {
                var: VAR,
                value: endpoint_text.clone(),
                source,
            })?;
        if !is_http_base(&ingestion_endpoint) {
            return Err(ExportError::IngestionEndpointScheme {
                var: VAR,
                value: endpoint_text,
            });
        }
        if !ingestion_endpoint.path().ends_with('/') {
            let path = format!("{}/", ingestion_endpoint.path());
            ingestion_endpoint.set_path(&path);
        }
        ingestion_endpoint.set_query(None);
        ingestion_endpoint.set_fragment(None);
        Ok(ConnectionString {
            instrumentation_key,
            ingestion_endpoint,
        })
    }

    /// `{ingestion_endpoint}v2.1/track`, where the envelopes go.
    pub fn track_url(&self) -> Result<Url, ExportError> {
        self.ingestion_endpoint
            .join("v2.1/track")
            .map_err(|source| ExportError::BadIngestionEndpoint {
                var: CONNECTION_STRING_VAR,
                value: self.ingestion_endpoint.to_string(),
                source,
            })
    }
}

impl std::str::FromStr for ConnectionString {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionString::parse(s)
    }
}

/// An http(s) URL with a host, to which paths can be joined.
fn is_http_base(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host().is_some() && !url.cannot_be_a_base()
}

/// The managed identity endpoint that issues the Entra ID token (api-version 2019-08-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `IDENTITY_ENDPOINT`, e.g. `http://localhost:42356/msi/token`.
    pub endpoint: Url,
    /// `IDENTITY_HEADER`, sent as `X-IDENTITY-HEADER`.
    pub header: Secret,
    /// The client id of a user-assigned identity; `None` for the system-assigned one.
    pub client_id: Option<String>,
}

impl Identity {
    /// An identity from explicit values.
    pub fn new(endpoint: Url, header: impl Into<String>, client_id: Option<String>) -> Self {
        Identity {
            endpoint,
            header: Secret::new(header),
            client_id,
        }
    }

    /// The identity the process environment names; `None` when neither `IDENTITY_ENDPOINT`
    /// nor `IDENTITY_HEADER` is set.
    pub fn from_env() -> Result<Option<Self>, ExportError> {
        Self::from_vars(&process_var)
    }

    /// [`Identity::from_env`] with the variables from `var` (name → value).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, ExportError> {
        let endpoint = non_empty(var, IDENTITY_ENDPOINT_VAR);
        let header = non_empty(var, IDENTITY_HEADER_VAR);
        let (endpoint, header) = match (endpoint, header) {
            (None, None) => return Ok(None),
            (Some(endpoint), Some(header)) => (endpoint, header),
            (Some(_), None) => {
                return Err(ExportError::IncompleteIdentity {
                    set: IDENTITY_ENDPOINT_VAR,
                    unset: IDENTITY_HEADER_VAR,
                });
            }
            (None, Some(_)) => {
                return Err(ExportError::IncompleteIdentity {
                    set: IDENTITY_HEADER_VAR,
                    unset: IDENTITY_ENDPOINT_VAR,
                });
            }
        };
        let url = Url::parse(&endpoint).map_err(|source| ExportError::BadIdentityEndpoint {
            var: IDENTITY_ENDPOINT_VAR,
            value: endpoint.clone(),
            source,
        })?;
        if !is_http_base(&url) {
            return Err(ExportError::IdentityEndpointScheme {
                var: IDENTITY_ENDPOINT_VAR,
                value: endpoint,
            });
        }
        let client_id = identity_client_id(
            var(AUTHENTICATION_STRING_VAR).as_deref(),
            var(AZURE_CLIENT_ID_VAR).as_deref(),
        );
        Ok(Some(Identity::new(url, header, client_id)))
    }
}

/// The client id of the user-assigned identity: `ClientId` of the authentication string
/// (`ClientId=<guid>;Authorization=AAD`), or else `AZURE_CLIENT_ID`; `None` (the
/// system-assigned identity) when neither has one.
pub fn identity_client_id(
    authentication_string: Option<&str>,
    azure_client_id: Option<&str>,
) -> Option<String> {
    authentication_string
        .and_then(|s| {
            s.split(';')
                .filter_map(|part| part.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("ClientId"))
                .map(|(_, value)| value.trim().to_owned())
        })
        .filter(|id| !id.is_empty())
        .or_else(|| {
            azure_client_id
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
        })
}

/// What [`run`] needs: where to send, how often, and as whom.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// The Application Insights resource.
    pub connection: ConnectionString,
    /// Time between exports.
    pub interval: Duration,
    /// The `ai.cloud.role` tag: the service's name (`worker`, `transformer`).
    pub role: String,
    /// The `ai.cloud.roleInstance` tag: this replica.
    pub role_instance: String,
    /// Where the Entra ID token comes from; `None` sends without `Authorization`.
    pub identity: Option<Identity>,
}

impl ExportSettings {
    /// Settings from explicit values, without an identity (see [`ExportSettings::with_identity`]);
    /// the role instance is this replica's name from the environment or the hostname.
    pub fn new(connection: ConnectionString, interval: Duration, role: impl Into<String>) -> Self {
        let role = role.into();
        let role_instance = role_instance(&process_var).unwrap_or_else(|| role.clone());
        ExportSettings {
            connection,
            interval,
            role,
            role_instance,
            identity: None,
        }
    }

    /// These settings with `identity`.
    pub fn with_identity(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// These settings with another role instance.
    pub fn with_role_instance(mut self, role_instance: impl Into<String>) -> Self {
        self.role_instance = role_instance.into();
        self
    }

    /// The settings the process environment gives (see the module documentation); `None`
    /// when `APPLICATIONINSIGHTS_CONNECTION_STRING` is unset or empty.
    pub fn from_env(role: &str, interval: Duration) -> Result<Option<Self>, ExportError> {
        Self::from_vars(role, interval, &process_var)
    }

    /// [`ExportSettings::from_env`] with the variables from `var` (name → value).
    pub fn from_vars(
        role: &str,
        interval: Duration,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ExportError> {
        let Some(text) = non_empty(var, CONNECTION_STRING_VAR) else {
            return Ok(None);
        };
        let connection = ConnectionString::parse(&text)?;
        let identity = Identity::from_vars(var)?;
        Ok(Some(ExportSettings {
            connection,
            interval,
            role: role.to_owned(),
            role_instance: role_instance(var).unwrap_or_else(|| role.to_owned()),
            identity,
        }))
    }
}

/// The exporter's knobs, declared once here and flattened into each service's config.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Application Insights connection string (Azure's own variable; terraform sets it): metrics are pushed there every METRICS_EXPORT_INTERVAL_MS with the managed identity's token; unset: no export.
    #[arg(long, env = "APPLICATIONINSIGHTS_CONNECTION_STRING", global = true)]
    pub applicationinsights_connection_string: Option<String>,
    /// Interval in ms of the Application Insights export (10000–3600000).
    #[arg(long, env, global = true, default_value_t = 60_000)]
    pub metrics_export_interval_ms: u64,
}

impl ExportArgs {
    /// The exporter's settings for `role` (`worker`, `transformer`), `None` without a connection
    /// string; the identity comes from the platform's variables ([`Identity::from_env`]).
    pub fn validate(
        &self,
        role: &str,
    ) -> Result<Option<ExportSettings>, crate::config::ConfigError> {
        if !(10_000..=3_600_000).contains(&self.metrics_export_interval_ms) {
            return Err(crate::config::ConfigError::invalid(
                "METRICS_EXPORT_INTERVAL_MS",
                format!(
                    "must be between 10000 and 3600000 (ms), got {}",
                    self.metrics_export_interval_ms
                ),
            ));
        }
        let interval = Duration::from_millis(self.metrics_export_interval_ms);
        let connection = self.applicationinsights_connection_string.clone();
        let var = move |name: &str| {
            if name == CONNECTION_STRING_VAR {
                connection.clone()
            } else {
                process_var(name)
            }
        };
        ExportSettings::from_vars(role, interval, &var)
            .map_err(|e| crate::config::ConfigError::invalid(e.var(), e.to_string()))
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `name`'s value, trimmed; `None` when unset or blank.
fn non_empty(var: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// This replica's name: the Container Apps or App Service variable, else the hostname.
fn role_instance(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    ROLE_INSTANCE_VARS
        .iter()
        .find_map(|name| non_empty(var, name))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .or_else(|| non_empty(var, "HOSTNAME"))
}

/// One label of a series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value, unescaped.
    pub value: String,
}

/// A series: its Prometheus sample name and its labels (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The sample name, e.g. `worker_records_total` or `worker_put_seconds_count`.
    pub name: String,
    /// The labels, sorted by name.
    pub labels: Vec<Label>,
}

/// How a series is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    /// Only grows (a counter, a histogram's or summary's `_count` and `_sum`): sent as its
    /// increase.
    Cumulative,
    /// Goes up and down (a gauge, or an untyped sample): sent as its value.
    Gauge,
}

/// One sample of the rendered text that is exported (buckets and quantiles are not).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series.
    pub key: SeriesKey,
    /// How it is sent.
    pub kind: SeriesKind,
    /// The rendered value.
    pub value: f64,
}

/// A Prometheus metric family's type, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// The family the samples that follow a `# TYPE` line belong to.
#[derive(Debug)]
struct Family<'a> {
    name: &'a str,
    kind: FamilyType,
}

/// A sample line, before its kind is known.
#[derive(Debug)]
struct RawSample<'a> {
    name: &'a str,
    labels: Vec<Label>,
    value: f64,
}

/// The samples of Prometheus text (as [`PrometheusHandle::render`] writes it) that are
/// exported: counters, gauges, untyped samples and the `_count` and `_sum` of histograms and
/// summaries. Lines that do not parse and values that are not finite (JSON has no NaN) are
/// skipped.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    let mut family: Option<Family<'_>> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(found) = type_line(comment) {
                family = Some(found);
            }
            continue;
        }
        let Some(raw) = sample_line(line) else {
            continue;
        };
        let Some(kind) = sample_kind(family.as_ref(), raw.name) else {
            continue;
        };
        if !raw.value.is_finite() {
            continue;
        }
        let mut labels = raw.labels;
        labels.sort();
        samples.push(Sample {
            key: SeriesKey {
                name: raw.name.to_owned(),
                labels,
            },
            kind,
            value: raw.value,
        });
    }
    samples
}

/// `TYPE name kind` (the text after `#`), or `None` for other comments.
fn type_line(comment: &str) -> Option<Family<'_>> {
    let mut words = comment.split_whitespace();
    if words.next()? != "TYPE" {
        return None;
    }
    let name = words.next()?;
    let kind = match words.next()? {
        "counter" => FamilyType::Counter,
        "gauge" => FamilyType::Gauge,
        "histogram" => FamilyType::Histogram,
        "summary" => FamilyType::Summary,
        _ => FamilyType::Untyped,
    };
    Some(Family { name, kind })
}

/// How the sample `name` is sent, given the family of the last `# TYPE` line; `None` for the
/// buckets and quantiles of histograms and summaries.
fn sample_kind(family: Option<&Family<'_>>, name: &str) -> Option<SeriesKind> {
    let Some(family) = family else {
        return Some(SeriesKind::Gauge);
    };
    // A sample outside the family of the last TYPE line has no type.
    let Some(rest) = name.strip_prefix(family.name) else {
        return Some(SeriesKind::Gauge);
    };
    match family.kind {
        FamilyType::Counter => Some(SeriesKind::Cumulative),
        FamilyType::Gauge | FamilyType::Untyped => Some(SeriesKind::Gauge),
        // `rest` is `_count`/`_sum`, or with a unit suffix `_seconds_count`; the quantile
        // lines have the family's name itself, the buckets `_bucket`.
        FamilyType::Histogram | FamilyType::Summary => {
            (rest.ends_with("_count") || rest.ends_with("_sum")).then_some(SeriesKind::Cumulative)
        }
    }
}

/// `name{label="value",...} value [timestamp]`, or `None` if the line does not parse.
fn sample_line(line: &str) -> Option<RawSample<'_>> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = label_list(inside)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(RawSample {
        name,
        labels,
        value,
    })
}

/// The labels after `{` up to the closing `}`, and the text after it. Values are unescaped
/// (`\\`, `\"`, `\n`); commas and `}` inside quotes are part of the value.
fn label_list(text: &str) -> Option<(Vec<Label>, &str)> {
    let mut labels = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let equals = rest.find('=')?;
        let name = rest[..equals].trim();
        let quoted = rest[equals + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '\\' => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, escaped) => value.push(escaped),
                },
                // The closing quote is one byte long.
                '"' => break at + 1,
                c => value.push(c),
            }
        };
        labels.push(Label {
            name: name.to_owned(),
            value,
        });
        rest = &quoted[end..];
    }
}

/// The cumulative values last delivered, per series: what the next increase is counted from.
#[derive(Debug, Clone, Default)]
pub struct ExportState {
    delivered: HashMap<SeriesKey, f64>,
}

impl ExportState {
    /// The value of `key` last delivered, if any.
    pub fn previous(&self, key: &SeriesKey) -> Option<f64> {
        self.delivered.get(key).copied()
    }

    /// Records `points` as delivered: their increases are counted from their totals from now
    /// on. Points of a failed request are not committed, so the next round sends them again.
    pub fn commit(&mut self, points: &[Point]) {
        for point in points {
            self.commit_point(point);
        }
    }

    /// Records one point as delivered (see [`ExportState::commit`]); a gauge's changes nothing.
    pub fn commit_point(&mut self, point: &Point) {
        if let Some(total) = point.total {
            self.delivered.insert(point.key.clone(), total);
        }
    }
}

/// One value to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The series.
    pub key: SeriesKey,
    /// The value sent: a gauge's value or a cumulative series' increase.
    pub value: f64,
    /// A cumulative series' rendered total, which [`ExportState::commit`] records once the
    /// point is delivered; `None` for a gauge.
    pub total: Option<f64>,
}

/// The points of rendered Prometheus `text` against what `state` says was delivered: every
/// gauge; every cumulative series whose increase is not 0, as its increase (its whole value the
/// first time, its new value after a decrease).
pub fn points(text: &str, state: &ExportState) -> Vec<Point> {
    parse_samples(text)
        .into_iter()
        .filter_map(|sample| match sample.kind {
            SeriesKind::Gauge => Some(Point {
                key: sample.key,
                value: sample.value,
                total: None,
            }),
            SeriesKind::Cumulative => {
                let increase = match state.previous(&sample.key) {
                    Some(previous) if sample.value >= previous => sample.value - previous,
                    // Never delivered, or reset by a restart: all of it is new.
                    _ => sample.value,
                };
                if increase == 0.0 {
                    None
                } else {
                    Some(Point {
                        key: sample.key,
                        value: increase,
                        total: Some(sample.value),
                    })
                }
            }
        })
        .collect()
}

/// One Application Insights metric envelope, serialized as `v2.1/track` expects it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    name: &'static str,
    time: String,
    #[serde(rename = "iKey")]
    ikey: String,
    tags: EnvelopeTags,
    data: EnvelopeData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct EnvelopeTags {
    #[serde(rename = "ai.cloud.role")]
    role: String,
    #[serde(rename = "ai.cloud.roleInstance")]
    role_instance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeData {
    base_type: &'static str,
    base_data: MetricData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct MetricData {
    ver: u8,
    metrics: [DataPoint; 1],
    properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct DataPoint {
    name: String,
    value: f64,
    count: u32,
}

impl Envelope {
    /// The metric's name (the Prometheus series name).
    pub fn metric_name(&self) -> &str {
        &self.data.base_data.metrics[0].name
    }

    /// The value sent.
    pub fn value(&self) -> f64 {
        self.data.base_data.metrics[0].value
    }

    /// The labels, as the envelope's properties.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.data.base_data.properties
    }

    /// The envelope's time (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        &self.time
    }
}

/// The envelope of `point`, stamped `time`.
pub fn envelope(point: &Point, settings: &ExportSettings, time: DateTime<Utc>) -> Envelope {
    Envelope {
        name: METRIC_ENVELOPE_NAME,
        time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
        ikey: settings.connection.instrumentation_key.clone(),
        tags: EnvelopeTags {
            role: settings.role.clone(),
            role_instance: settings.role_instance.clone(),
        },
        data: EnvelopeData {
            base_type: "MetricData",
            base_data: MetricData {
                ver: 2,
                metrics: [DataPoint {
                    name: point.key.name.clone(),
                    value: point.value,
                    count: 1,
                }],
                properties: point
                    .key
                    .labels
                    .iter()
                    .map(|label| (label.name.clone(), label.value.clone()))
                    .collect(),
            },
        },
    }
}

/// The envelopes one round sends for rendered Prometheus `text` (see [`points`]).
pub fn envelopes(
    text: &str,
    state: &ExportState,
    settings: &ExportSettings,
    time: DateTime<Utc>,
) -> Vec<Envelope> {
    points(text, state)
        .iter()
        .map(|point| envelope(point, settings, time))
        .collect()
}

/// A binary's exporter task: started beside the work, finished (one last flush) after it.
#[derive(Debug)]
pub struct Export {
    task: Option<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
}

impl Export {
    /// Starts [`run`] when `settings` is `Some`; it stops on `shutdown` or at [`Export::finish`].
    pub fn start(
        settings: Option<ExportSettings>,
        handle: &PrometheusHandle,
        shutdown: &CancellationToken,
    ) -> Self {
        let stop = shutdown.child_token();
        let task = settings.map(|s| tokio::spawn(run(s, handle.clone(), stop.clone())));
        Export { task, stop }
    }

    /// Stops the exporter after its last flush (bounded by [`FINAL_FLUSH_TIMEOUT`]).
    pub async fn finish(self) {
        self.stop.cancel();
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// Exports `handle`'s metrics every `settings.interval` until `shutdown` is cancelled, then
/// once more (bounded by [`FINAL_FLUSH_TIMEOUT`]). Failures are logged and counted, never
/// returned: spawn it next to the service's tasks.
pub async fn run(settings: ExportSettings, handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut exporter = match Exporter::new(settings) {
        Ok(exporter) => exporter,
        Err(e) => {
            error!(event = "metrics_export_not_started", error = %report(&e));
            return;
        }
    };
    let period = exporter.settings.interval.max(MIN_INTERVAL);
    info!(
        event = "metrics_export_started",
        endpoint = %exporter.track_url,
        role = %exporter.settings.role,
        role_instance = %exporter.settings.role_instance,
        interval_ms = period.as_millis() as u64,
        authenticated = exporter.token.is_some()
    );
    if exporter.token.is_none() {
        warn!(
            event = "metrics_export_unauthenticated",
            endpoint = %exporter.track_url,
            "no managed identity ({IDENTITY_ENDPOINT_VAR}/{IDENTITY_HEADER_VAR} unset): metrics go without an Entra ID token, which Azure Monitor refuses when local auth is disabled"
        );
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                // A round cut short by shutdown loses nothing: what it did not deliver is
                // still pending for the final flush.
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = exporter.export(&handle) => {}
                }
            }
        }
    }
    let flushed = tokio::time::timeout(FINAL_FLUSH_TIMEOUT, exporter.export(&handle))
        .await
        .is_ok();
    info!(event = "metrics_export_stopped", flushed);
}

/// The state of [`run`].
#[derive(Debug)]
struct Exporter {
    settings: ExportSettings,
    track_url: Url,
    client: reqwest::Client,
    state: ExportState,
    token: Option<TokenSource>,
}

impl Exporter {
    fn new(settings: ExportSettings) -> Result<Self, ExportError> {
        let track_url = settings.connection.track_url()?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ExportError::Client { source })?;
        let token = settings.identity.clone().map(|identity| TokenSource {
            identity,
            cached: None,
        });
        Ok(Exporter {
            settings,
            track_url,
            client,
            state: ExportState::default(),
            token,
        })
    }

    /// One round: render, compute the points, send them in batches; a batch is committed
    /// when it is delivered, and the round stops at the first failure.
    async fn export(&mut self, handle: &PrometheusHandle) {
        let text = handle.render();
        let points = points(&text, &self.state);
        if points.is_empty() {
            debug!(event = "metrics_export_idle");
            return;
        }
        let bearer = match self.bearer().await {
            Ok(bearer) => bearer,
            Err(e) => {
                failed("token", &e, points.len());
                return;
            }
        };
        let time = Utc::now();
        let mut delivered = 0usize;
        for chunk in points.chunks(MAX_ENVELOPES_PER_REQUEST) {
            let batch: Vec<Envelope> = chunk
                .iter()
                .map(|point| envelope(point, &self.settings, time))
                .collect();
            match self.post(&batch, bearer.as_ref()).await {
                Ok(retry) => {
                    for (index, point) in chunk.iter().enumerate() {
                        if !retry.contains(&index) {
                            self.state.commit_point(point);
                        }
                    }
                    delivered += chunk.len() - retry.len();
                }
                Err(e) => {
                    if matches!(e.status(), Some(401 | 403))
                        && let Some(source) = &mut self.token
                    {
                        // Perhaps revoked or for another identity: fetch a new one next round.
                        source.cached = None;
                    }
                    failed("post", &e, chunk.len());
                    return;
                }
            }
        }
        debug!(event = "metrics_exported", envelopes = delivered);
    }

    /// The token to send, if there is an identity.
    async fn bearer(&mut self) -> Result<Option<Secret>, ExportError> {
        match &mut self.token {
            Some(source) => source.get(&self.client).await.map(Some),
            None => Ok(None),
        }
    }

    /// POSTs `batch`; on 200 or 206, the indexes of the items to send again (those a 206
    /// refused with a retriable status).
    async fn post(
        &self,
        batch: &[Envelope],
        bearer: Option<&Secret>,
    ) -> Result<BTreeSet<usize>, ExportError> {
        let body = serde_json::to_vec(batch).map_err(|source| ExportError::Encode { source })?;
        let mut request = self
            .client
            .post(self.track_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|source| ExportError::Post {
            url: self.track_url.to_string(),
            source,
        })?;
        let status = response.status().as_u16();
        match status {
            200 => Ok(BTreeSet::new()),
            206 => {
                let text = response.text().await.unwrap_or_default();
                Ok(partial(&text, batch.len()))
            }
            _ => {
                let text = response.text().await.unwrap_or_default();
                Err(ExportError::Status {
                    url: self.track_url.to_string(),
                    status,
                    body: excerpt(&text),
                })
            }
        }
    }
}

/// Logs and counts a failed request of `envelopes` envelopes.
fn failed(stage: &'static str, e: &ExportError, envelopes: usize) {
    warn!(
        event = "metrics_export_failed",
        stage,
        status = e.status(),
        envelopes,
        error = %report(e)
    );
    metrics::counter!(EXPORT_FAILURES_METRIC).increment(1);
}

/// The answer to `v2.1/track`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackResponse {
    #[serde(default)]
    items_received: u64,
    #[serde(default)]
    items_accepted: u64,
    #[serde(default)]
    errors: Vec<TrackItemError>,
}

/// One refused item of a 206 answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackItemError {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    status_code: u16,
    #[serde(default)]
    message: String,
}

/// Logs a 206 answer to a batch of `sent` envelopes and returns the indexes of the items
/// refused with a retriable status.
fn partial(body: &str, sent: usize) -> BTreeSet<usize> {
    let answer: TrackResponse = serde_json::from_str(body).unwrap_or_default();
    let retry: BTreeSet<usize> = answer
        .errors
        .iter()
        .filter(|e| e.index < sent && RETRIABLE_ITEM_STATUS.contains(&e.status_code))
        .map(|e| e.index)
        .collect();
    warn!(
        event = "metrics_export_partial",
        sent,
        received = answer.items_received,
        accepted = answer.items_accepted,
        refused = answer.errors.len(),
        retried = retry.len(),
        first_error = answer.errors.first().map_or("", |e| e.message.as_str())
    );
    retry
}

/// The first [`BODY_EXCERPT_CHARS`] characters of an error answer.
fn excerpt(body: &str) -> String {
    body.trim().chars().take(BODY_EXCERPT_CHARS).collect()
}

/// Tokens from the managed identity endpoint, cached until [`TOKEN_REFRESH_MARGIN_SECS`]
/// before they expire.
#[derive(Debug)]
struct TokenSource {
    identity: Identity,
    cached: Option<CachedToken>,
}

#[derive(Debug)]
struct CachedToken {
    token: Secret,
    /// Unix seconds until which the token is used.
    reuse_until: u64,
}

/// The identity endpoint's answer.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: Secret,
    /// Unix seconds, as a string (api-version 2019-08-01) or a number.
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    /// Seconds, as a string or a number.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenSource {
    async fn get(&mut self, client: &reqwest::Client) -> Result<Secret, ExportError> {
        let now = unix_now();
        if let Some(cached) = &self.cached
            && now < cached.reuse_until
        {
            return Ok(cached.token.clone());
        }
        let answer = self.fetch(client).await?;
        let now = unix_now();
        let expires = answer
            .expires_on
            .as_ref()
            .and_then(unix_seconds)
            .or_else(|| {
                answer
                    .expires_in
                    .as_ref()
                    .and_then(unix_seconds)
                    .map(|seconds| now.saturating_add(seconds))
            });
        // Without a known expiry the token is fetched again next round.
        self.cached = expires.map(|expires| CachedToken {
            token: answer.access_token.clone(),
            reuse_until: expires.saturating_sub(TOKEN_REFRESH_MARGIN_SECS),
        });
        Ok(answer.access_token)
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<TokenResponse, ExportError> {
        let identity = &self.identity;
        let endpoint = identity.endpoint.to_string();
        let mut url = identity.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("resource", MONITOR_RESOURCE)
            .append_pair("api-version", IDENTITY_API_VERSION);
        if let Some(client_id) = &identity.client_id {
            url.query_pairs_mut().append_pair("client_id", client_id);
        }
        let response = client
            .get(url)
            .header(IDENTITY_HEADER_NAME, identity.header.expose())
            .send()
            .await
            .map_err(|source| ExportError::TokenRequest {
                endpoint: endpoint.clone(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(ExportError::TokenStatus {
                endpoint,
                status: status.as_u16(),
                body: excerpt(&text),
            });
        }
        response
            .json::<TokenResponse>()
            .await
            .map_err(|source| ExportError::TokenBody { endpoint, source })
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A whole number of seconds, given as a JSON number or a string of digits.
fn unix_seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    fn settings() -> ExportSettings {
        let connection = ConnectionString::parse(
            "InstrumentationKey=ikey-1;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
        )
        .expect("connection string");
        ExportSettings::new(connection, DEFAULT_INTERVAL, "worker").with_role_instance("replica-1")
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// (name, value) of each point, for short assertions.
    fn sent(points: &[Point]) -> Vec<(String, f64)> {
        points
            .iter()
            .map(|p| (p.key.name.clone(), p.value))
            .collect()
    }

    fn named(name: &str, value: f64) -> (String, f64) {
        (name.to_owned(), value)
    }

    #[test]
    fn connection_string_parses() {
        let c = ConnectionString::parse(
            " InstrumentationKey=0000-1111 ; IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com ;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;ApplicationId=abc;",
        )
        .expect("parses");
        assert_eq!(c.instrumentation_key, "0000-1111");
        assert_eq!(
            c.ingestion_endpoint.as_str(),
            "https://westeurope-5.in.applicationinsights.azure.com/"
        );
        assert_eq!(
            c.track_url().expect("track url").as_str(),
            "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track"
        );
        let keys_in_any_case: ConnectionString =
            "instrumentationkey=k;ingestionendpoint=http://127.0.0.1:9/base"
                .parse()
                .expect("parses");
        assert_eq!(
            keys_in_any_case.track_url().expect("track url").as_str(),
            "http://127.0.0.1:9/base/v2.1/track"
        );
    }

    #[test]
    fn connection_string_defaults_the_endpoint() {
        let c = ConnectionString::parse("InstrumentationKey=k").expect("parses");
        assert_eq!(c.ingestion_endpoint.as_str(), DEFAULT_INGESTION_ENDPOINT);
        let c = ConnectionString::parse(
            "InstrumentationKey=k;EndpointSuffix=applicationinsights.azure.cn",
        )
        .expect("parses");
        assert_eq!(
            c.ingestion_endpoint.as_str(),
            "https://dc.applicationinsights.azure.cn/"
        );
    }

    #[test]
    fn connection_string_without_a_key_names_the_variable() {
        for text in [
            "IngestionEndpoint=https://x.in.applicationinsights.azure.com/",
            "InstrumentationKey=;IngestionEndpoint=https://x/",
        ] {
            let err = ConnectionString::parse(text).expect_err("no key");
            assert!(
                matches!(err, ExportError::MissingInstrumentationKey { .. }),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(message.contains(CONNECTION_STRING_VAR), "{message}");
            assert!(message.contains("InstrumentationKey"), "{message}");
        }
        let err = ConnectionString::parse("just-a-key").expect_err("no =");
        assert!(
            matches!(err, ExportError::MalformedConnectionString { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn connection_string_with_a_bad_endpoint_names_the_variable() {
        let err = ConnectionString::parse("InstrumentationKey=k;IngestionEndpoint=not a url")
            .expect_err("bad url");
        assert!(
            matches!(err, ExportError::BadIngestionEndpoint { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(CONNECTION_STRING_VAR), "{err}");
        assert!(err.to_string().contains("not a url"), "{err}");
        let err = ConnectionString::parse("InstrumentationKey=k;IngestionEndpoint=ftp://host/")
            .expect_err("not http");
        assert!(
            matches!(err, ExportError::IngestionEndpointScheme { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(CONNECTION_STRING_VAR), "{err}");
    }

    #[test]
    fn settings_from_vars() {
        let none = ExportSettings::from_vars("worker", DEFAULT_INTERVAL, &|_: &str| None)
            .expect("no error");
        assert!(none.is_none());
        let blank = vars(&[(CONNECTION_STRING_VAR, "  ")]);
        let none = ExportSettings::from_vars("worker", DEFAULT_INTERVAL, &|name: &str| {
            blank.get(name).cloned()
        })
        .expect("no error");
        assert!(none.is_none());

        let azure = vars(&[
            (
                CONNECTION_STRING_VAR,
                "InstrumentationKey=k;IngestionEndpoint=https://x.example/",
            ),
            (IDENTITY_ENDPOINT_VAR, "http://localhost:42356/msi/token"),
            (IDENTITY_HEADER_VAR, "h"),
            (
                AUTHENTICATION_STRING_VAR,
                "ClientId=1111-2222;Authorization=AAD",
            ),
            (AZURE_CLIENT_ID_VAR, "other"),
            ("CONTAINER_APP_REPLICA_NAME", "worker--abc-1"),
        ]);
        let settings = ExportSettings::from_vars("worker", DEFAULT_INTERVAL, &|name: &str| {
            azure.get(name).cloned()
        })
        .expect("valid")
        .expect("configured");
        assert_eq!(settings.role, "worker");
        assert_eq!(settings.role_instance, "worker--abc-1");
        let identity = settings.identity.expect("identity");
        assert_eq!(
            identity.endpoint.as_str(),
            "http://localhost:42356/msi/token"
        );
        assert_eq!(identity.header.expose(), "h");
        assert_eq!(identity.client_id.as_deref(), Some("1111-2222"));

        let half = vars(&[
            (CONNECTION_STRING_VAR, "InstrumentationKey=k"),
            (IDENTITY_ENDPOINT_VAR, "http://localhost:42356/msi/token"),
        ]);
        let err = ExportSettings::from_vars("worker", DEFAULT_INTERVAL, &|name: &str| {
            half.get(name).cloned()
        })
        .expect_err("header missing");
        assert!(err.to_string().contains(IDENTITY_HEADER_VAR), "{err}");
    }

    #[test]
    fn client_id_comes_from_the_authentication_string_or_azure_client_id() {
        assert_eq!(
            identity_client_id(Some("ClientId=abc;Authorization=AAD"), Some("def")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            identity_client_id(Some("Authorization=AAD"), Some("def")).as_deref(),
            Some("def")
        );
        assert_eq!(identity_client_id(None, Some(" ")), None);
        assert_eq!(identity_client_id(None, None), None);
    }

    #[test]
    fn labels_with_escaped_quotes_and_commas_parse() {
        let text = concat!(
            "# HELP demo_total Demo, with \"quotes\".\n",
            "# TYPE demo_total counter\n",
            "demo_total{topic=\"a \\\"quoted\\\", b\",path=\"c:\\\\dir\",note=\"x\\ny\",brace=\"}{\"} 7\n",
            "demo_total 2 1700000000000\n",
        );
        let samples = parse_samples(text);
        assert_eq!(samples.len(), 2, "{samples:?}");
        let labels: Vec<(&str, &str)> = samples[0]
            .key
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("brace", "}{"),
                ("note", "x\ny"),
                ("path", "c:\\dir"),
                ("topic", "a \"quoted\", b")
            ]
        );
        assert_eq!(samples[0].value, 7.0);
        assert_eq!(samples[0].kind, SeriesKind::Cumulative);
        assert!(samples[1].key.labels.is_empty());
        assert_eq!(samples[1].value, 2.0);
    }

    #[test]
    fn labels_round_trip_through_the_recorder() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let value = "he said \"hi, there\" \\ left";
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("demo_total", "note" => value).increment(1);
        });
        let samples = parse_samples(&handle.render());
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert_eq!(samples[0].key.labels[0].value, value);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "# TYPE x gauge\nx{a=\"unterminated} 1\nx{a=b} 2\nx notanumber\nx NaN\ny 3\n";
        assert_eq!(
            sent(&points(text, &ExportState::default())),
            [named("y", 3.0)]
        );
    }

    #[test]
    fn counters_go_as_increases() {
        let mut state = ExportState::default();
        let first = points("# TYPE c_total counter\nc_total{k=\"v\"} 3\n", &state);
        assert_eq!(sent(&first), [named("c_total", 3.0)]);
        state.commit(&first);

        let second = points("# TYPE c_total counter\nc_total{k=\"v\"} 5\n", &state);
        assert_eq!(sent(&second), [named("c_total", 2.0)]);
        state.commit(&second);

        let unchanged = points("# TYPE c_total counter\nc_total{k=\"v\"} 5\n", &state);
        assert!(unchanged.is_empty(), "{unchanged:?}");

        let reset = points("# TYPE c_total counter\nc_total{k=\"v\"} 1\n", &state);
        assert_eq!(sent(&reset), [named("c_total", 1.0)]);
        state.commit(&reset);
        let after_reset = points("# TYPE c_total counter\nc_total{k=\"v\"} 4\n", &state);
        assert_eq!(sent(&after_reset), [named("c_total", 3.0)]);

        let never_counted = points("# TYPE z_total counter\nz_total 0\n", &state);
        assert!(never_counted.is_empty(), "{never_counted:?}");
    }

    #[test]
    fn series_are_counted_apart() {
        let mut state = ExportState::default();
        let text = "# TYPE c_total counter\nc_total{k=\"a\"} 3\nc_total{k=\"b\"} 1\n";
        state.commit(&points(text, &state));
        let text = "# TYPE c_total counter\nc_total{k=\"a\"} 3\nc_total{k=\"b\"} 4\n";
        let next = points(text, &state);
        assert_eq!(sent(&next), [named("c_total", 3.0)]);
        assert_eq!(next[0].key.labels[0].value, "b");
    }

    #[test]
    fn an_undelivered_round_is_sent_with_the_next() {
        let state = ExportState::default();
        let failed = points("# TYPE c_total counter\nc_total 3\n", &state);
        assert_eq!(sent(&failed), [named("c_total", 3.0)]);
        // Not committed: the next round counts from the last delivered value.
        let next = points("# TYPE c_total counter\nc_total 5\n", &state);
        assert_eq!(sent(&next), [named("c_total", 5.0)]);
    }

    #[test]
    fn gauges_are_always_sent() {
        let mut state = ExportState::default();
        let text = "# TYPE g gauge\ng 2.5\ng{k=\"zero\"} 0\n# TYPE u untyped\nu 1\nloose 4\n";
        for _ in 0..2 {
            let round = points(text, &state);
            assert_eq!(
                sent(&round),
                [
                    named("g", 2.5),
                    named("g", 0.0),
                    named("u", 1.0),
                    named("loose", 4.0)
                ]
            );
            assert!(round.iter().all(|p| p.total.is_none()));
            state.commit(&round);
        }
    }

    #[test]
    fn histograms_go_as_count_and_sum_only() {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.1, 1.0])
            .expect("buckets")
            .build_recorder();
        let handle = recorder.handle();
        let histogram = metrics::with_local_recorder(
            &recorder,
            || metrics::histogram!("demo_seconds", "stage" => "put"),
        );
        histogram.record(0.25);
        histogram.record(0.5);
        let text = handle.render();
        assert!(text.contains("demo_seconds_bucket"), "{text}");
        let mut state = ExportState::default();
        let first = points(&text, &state);
        assert_eq!(
            sent(&first),
            [
                named("demo_seconds_sum", 0.75),
                named("demo_seconds_count", 2.0)
            ],
            "{text}"
        );
        assert_eq!(first[0].key.labels[0].name, "stage");
        state.commit(&first);
        histogram.record(1.0);
        let second = points(&handle.render(), &state);
        assert_eq!(
            sent(&second),
            [
                named("demo_seconds_sum", 1.0),
                named("demo_seconds_count", 1.0)
            ]
        );
        state.commit(&second);
        assert!(points(&handle.render(), &state).is_empty());
    }

    #[test]
    fn summaries_go_as_count_and_sum_only() {
        let text = concat!(
            "# TYPE lat summary\n",
            "lat{quantile=\"0.5\"} 0.2\n",
            "lat{quantile=\"0.99\"} 0.9\n",
            "lat_sum 3.5\n",
            "lat_count 7\n",
        );
        assert_eq!(
            sent(&points(text, &ExportState::default())),
            [named("lat_sum", 3.5), named("lat_count", 7.0)]
        );
    }

    #[test]
    fn envelopes_have_the_track_shape() {
        let time = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let text = "# TYPE demo_total counter\ndemo_total{topic=\"heroes\"} 3\n";
        let out = envelopes(text, &ExportState::default(), &settings(), time);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].metric_name(), "demo_total");
        assert_eq!(out[0].value(), 3.0);
        assert_eq!(out[0].time(), "2024-05-01T12:00:00.000Z");
        let json = serde_json::to_value(&out[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "Microsoft.ApplicationInsights.Metric",
                "time": "2024-05-01T12:00:00.000Z",
                "iKey": "ikey-1",
                "tags": {"ai.cloud.role": "worker", "ai.cloud.roleInstance": "replica-1"},
                "data": {
                    "baseType": "MetricData",
                    "baseData": {
                        "ver": 2,
                        "metrics": [{"name": "demo_total", "value": 3.0, "count": 1}],
                        "properties": {"topic": "heroes"}
                    }
                }
            })
        );
    }

    #[test]
    fn partial_answers_retry_only_retriable_items() {
        let body = r#"{"itemsReceived":3,"itemsAccepted":1,"errors":[{"index":0,"statusCode":400,"message":"bad"},{"index":2,"statusCode":503,"message":"busy"},{"index":9,"statusCode":503,"message":"out of range"}]}"#;
        assert_eq!(partial(body, 3), BTreeSet::from([2]));
        assert!(partial("not json", 3).is_empty());
    }

    #[test]
    fn expiry_is_a_number_or_a_string() {
        assert_eq!(
            unix_seconds(&serde_json::json!(1700000000)),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_seconds(&serde_json::json!("1700000000")),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_seconds(&serde_json::json!("11/2/2023 12:00:00 AM +00:00")),
            None
        );
    }
}
