# --- Where and what -------------------------------------------------------------------------

variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into; null uses ARM_SUBSCRIPTION_ID or the az CLI default."
  default     = null
  nullable    = true
}

variable "location" {
  type        = string
  description = "Azure region for everything; pick one that offers Flex Consumption (e.g. westeurope, northeurope, swedencentral, eastus, eastus2)."
}

variable "project" {
  type        = string
  description = "Short project name used in resource names (2-10 lowercase letters/digits)."
  default     = "superhero"
}

variable "environment" {
  type        = string
  description = "Deployment stage: dev, test, staging or prod."
  default     = "dev"
}

variable "name_suffix" {
  type        = string
  description = "0-6 lowercase letters/digits for globally unique names; empty derives a stable one from the subscription id."
  default     = ""
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource."
  default     = {}
}

# --- Storage ------------------------------------------------------------------------------------

variable "data_replication_type" {
  type        = string
  description = "Replication of the ADLS Gen2 data account (LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS)."
  default     = "ZRS"
}

variable "raw_retention_days" {
  type        = number
  description = "Delete raw batches after this many days; null keeps them."
  default     = 30
  nullable    = true
}

variable "soft_delete_retention_days" {
  type        = number
  description = "Days deleted blobs and containers stay recoverable."
  default     = 7
}

variable "grant_deployer_data_access" {
  type        = bool
  description = "Give whoever runs apply Storage Blob Data Contributor on raw and standard, to run the worker from a laptop with az login and inspect output."
  default     = true
}

# --- Transformer (Function App) -----------------------------------------------------------------

variable "function_instance_memory_in_mb" {
  type        = number
  description = "Flex Consumption instance memory: 2048 or 4096 (at most 5 or 11 transforms at once per instance, WATCH_CONCURRENCY; 512 is refused, see README \"Concurrency and memory\")."
  default     = 2048
}

variable "function_maximum_instance_count" {
  type        = number
  description = "Flex Consumption scale-out limit (1-1000); a cost guard."
  default     = 40
}

variable "function_runtime_version" {
  type        = string
  description = "Custom handler runtime version; \"1.0\" is the only catalogued one."
  default     = "1.0"
}

variable "parquet_compression" {
  type        = string
  description = "PARQUET_COMPRESSION for the transformer."
  default     = "zstd"
}

variable "standard_format" {
  type        = string
  description = "STANDARD_FORMAT for the transformer: delta (one Delta Lake table per model, committed by the timer function `commit`) or parquet (one Parquet file per model per raw blob)."
  default     = "delta"

  validation {
    condition     = contains(["delta", "parquet"], var.standard_format)
    error_message = "standard_format must be delta or parquet."
  }
}

variable "vacuum_retention_hours" {
  type        = number
  description = "VACUUM_RETENTION_HOURS: the timer function `vacuum` deletes data files removed from the Delta log more than this many hours ago (a whole number >= 168, a week, as the transformer requires: readers of older snapshots and time travel need the files until then)."
  default     = 168

  validation {
    condition     = var.vacuum_retention_hours >= 168 && floor(var.vacuum_retention_hours) == var.vacuum_retention_hours
    error_message = "vacuum_retention_hours must be a whole number of hours, at least 168 (the transformer refuses to start with less: readers of older snapshots and time travel need the files for a week)."
  }
}

variable "enable_blob_trigger_subscription" {
  type        = bool
  description = "Create the Event Grid subscription that delivers BlobCreated events to the `transform` function (an Event Grid trigger). Leave false on the first apply; set true after the function package is deployed (README, step 6)."
  default     = false
}

variable "event_max_delivery_attempts" {
  type        = number
  description = "Event Grid delivery attempts before dead-lettering (1-30)."
  default     = 30
}

variable "event_time_to_live_minutes" {
  type        = number
  description = "Minutes Event Grid retries an event before dead-lettering it (1-1440)."
  default     = 1440
}

# --- Monitoring ---------------------------------------------------------------------------------

variable "log_retention_in_days" {
  type        = number
  description = "Log Analytics and Application Insights retention (30-730)."
  default     = 30
}

variable "log_daily_quota_gb" {
  type        = number
  description = "Daily Log Analytics ingestion cap in GB; -1 for none."
  default     = 1
}

variable "alert_emails" {
  type        = list(string)
  description = "Email addresses notified by every alert (modules/monitoring); empty creates no action group, the alerts then only show in the portal."
  default     = []
}

variable "consumer_lag_threshold" {
  type        = number
  description = "Alert when the worker group's Kafka lag (sum of worker_consumer_lag, in records) stays above this for 15 minutes."
  default     = 100000
}

variable "function_failure_threshold" {
  type        = number
  description = "Alert when one function has more failed invocations than this in 15 minutes (0: any failure)."
  default     = 0
}

variable "log_format" {
  type        = string
  description = "LOG_FORMAT for both binaries: json or text."
  default     = "json"
}

variable "rust_log" {
  type        = string
  description = "RUST_LOG filter for both binaries."
  default     = "info"
}

# --- Worker settings (env file and optional container app) ------------------------------------

variable "kafka_brokers" {
  type        = string
  description = "KAFKA_BROKERS: bootstrap servers, comma-separated host:port."
  default     = "127.0.0.1:9092"
}

variable "kafka_topics" {
  type        = list(string)
  description = "KAFKA_TOPICS: topics the worker consumes."
  default     = ["superhero-events"]
}

variable "kafka_group_id" {
  type        = string
  description = "KAFKA_GROUP_ID: consumer group of the worker."
  default     = "superhero-raw-worker"
}

variable "kafka_security_protocol" {
  type        = string
  description = "KAFKA_SECURITY_PROTOCOL: PLAINTEXT (the local broker, matching the default kafka_brokers), SSL, SASL_PLAINTEXT or SASL_SSL (required by the container app)."
  default     = "PLAINTEXT"

  validation {
    condition     = contains(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], var.kafka_security_protocol)
    error_message = "The kafka_security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
  }
}

variable "kafka_sasl_mechanism" {
  type        = string
  description = "KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  default     = "PLAIN"
}

variable "batch_size" {
  type        = number
  description = "BATCH_SIZE: records per raw batch before a flush; null leaves the worker's default."
  default     = null
  nullable    = true
}

variable "batch_max_bytes" {
  type        = number
  description = "BATCH_MAX_BYTES: uncompressed bytes per raw batch before a flush; null leaves the worker's default."
  default     = null
  nullable    = true
}

variable "batch_max_wait_ms" {
  type        = number
  description = "BATCH_MAX_WAIT_MS: longest a partial batch waits before a flush; null leaves the worker's default."
  default     = null
  nullable    = true
}

variable "env_credential" {
  type        = string
  description = "How the generated env/azure.env authenticates to storage: azure-cli (a laptop after az login) or managed-identity (a host with the worker identity attached)."
  default     = "azure-cli"

  validation {
    condition     = contains(["azure-cli", "managed-identity"], var.env_credential)
    error_message = "env_credential must be azure-cli or managed-identity."
  }
}

variable "enable_worker_app" {
  type        = bool
  description = "Run the worker on Azure Container Apps (modules/worker_app). Off by default: the worker runs wherever Kafka is reachable."
  default     = false
}

variable "worker_image" {
  type        = string
  description = "Worker image for the container app (required when enable_worker_app is true)."
  default     = null
  nullable    = true
}

variable "worker_registry_server" {
  type        = string
  description = "Registry host the container app pulls from with the worker identity; null for a public image."
  default     = null
  nullable    = true
}

variable "worker_registry_id" {
  type        = string
  description = "Resource id of an Azure Container Registry to grant the worker AcrPull on; null to skip."
  default     = null
  nullable    = true
}

variable "worker_max_replicas" {
  type        = number
  description = "Daemon mode: maximum worker replicas (Kafka-lag scale rule); no more than the topics' partition count."
  default     = 3
}

variable "worker_mode" {
  type        = string
  description = "How the container app runs the worker: daemon (always on, Kafka-lag scaling) or scheduled (a Container Apps Job running one pass, BATCH_CONTINUOUS=false, on worker_schedule_cron)."
  default     = "daemon"

  validation {
    condition     = contains(["daemon", "scheduled"], var.worker_mode)
    error_message = "worker_mode must be daemon or scheduled."
  }
}

variable "worker_schedule_cron" {
  type        = string
  description = "Scheduled mode: five-field cron expression, in UTC, on which a pass starts."
  default     = "*/15 * * * *"
}

variable "worker_job_replica_timeout_seconds" {
  type        = number
  description = "Scheduled mode: longest a pass may run before Container Apps stops it; at least 60 s above worker_pass_max_seconds."
  default     = 1800
}

variable "worker_job_retry_limit" {
  type        = number
  description = "Scheduled mode: retries of a failed pass within one execution (a retry lands nothing twice)."
  default     = 1
}

variable "worker_pass_max_seconds" {
  type        = number
  description = "Scheduled mode: PASS_MAX_SECONDS, a pass lands what it has and exits 0 after this long; null for no bound. Keep it at least 60 s below worker_job_replica_timeout_seconds, and below the schedule's interval so passes do not overlap."
  default     = null
  nullable    = true
}

variable "kafka_sasl_username" {
  type        = string
  description = "SASL user for the container app; stored in Key Vault write-only. Pass with TF_VAR_kafka_sasl_username."
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "kafka_sasl_password" {
  type        = string
  description = "SASL password for the container app; stored in Key Vault write-only. Pass with TF_VAR_kafka_sasl_password."
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "worker_secret_version" {
  type        = number
  description = "Bump to push new Kafka/Redis secret values to Key Vault."
  default     = 1
}

variable "cleanup_enabled" {
  type        = bool
  description = "CLEANUP_ENABLED for the worker; when true the container app also gets REDIS_URL from Key Vault (pass redis_url)."
  default     = false
}

variable "redis_url" {
  type        = string
  description = "REDIS_URL for the worker's cleanup (used when cleanup_enabled); stored in Key Vault write-only. Pass with TF_VAR_redis_url."
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "redis_expiry" {
  type        = string
  description = "REDIS_EXPIRY for the worker's cleanup, in the worker's own format; null leaves its default."
  default     = null
  nullable    = true
}
