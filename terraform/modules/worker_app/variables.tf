variable "resource_group_name" {
  type        = string
  description = "Resource group for the environment, the app and the Key Vault."
}

variable "location" {
  type        = string
  description = "Azure region for the environment, the app and the Key Vault."
}

variable "container_app_environment_name" {
  type        = string
  description = "Name of the Container Apps environment (Consumption workload profile)."
}

variable "container_app_name" {
  type        = string
  description = "Name of the worker container app (<= 32 characters, lowercase letters, digits, hyphens); used in daemon mode."
}

variable "job_name" {
  type        = string
  description = "Name of the worker Container Apps Job in scheduled mode (<= 32 characters, lowercase letters, digits, hyphens); null uses container_app_name (a job and an app are different resource types)."
  default     = null
  nullable    = true
}

variable "mode" {
  type        = string
  description = "How the worker runs: daemon (an always-on container app, Kafka-lag scaling) or scheduled (a Container Apps Job that runs one pass, BATCH_CONTINUOUS=false, on schedule_cron and exits). Exactly one of the two exists."
  default     = "daemon"
  nullable    = false

  validation {
    condition     = contains(["daemon", "scheduled"], var.mode)
    error_message = "mode must be daemon or scheduled."
  }
}

variable "schedule_cron" {
  type        = string
  description = "Scheduled mode: when a pass starts, a five-field cron expression (minute hour day-of-month month day-of-week) evaluated in UTC."
  default     = "*/15 * * * *"

  validation {
    condition     = length(regexall("[^ ]+", var.schedule_cron)) == 5
    error_message = "schedule_cron must have five fields: minute hour day-of-month month day-of-week (e.g. \"*/15 * * * *\")."
  }
}

variable "job_replica_timeout_seconds" {
  type        = number
  description = "Scheduled mode: longest a pass may run before Container Apps stops it (replica_timeout_in_seconds). At least 60 s above pass_max_seconds; a pass stopped by it lands nothing twice when the next one runs, but its execution counts as failed."
  default     = 1800

  validation {
    condition     = var.job_replica_timeout_seconds >= 60 && floor(var.job_replica_timeout_seconds) == var.job_replica_timeout_seconds
    error_message = "job_replica_timeout_seconds must be a whole number of seconds, at least 60 (joining the group alone may take PASS_ASSIGN_TIMEOUT_MS, 30 s)."
  }
}

variable "job_retry_limit" {
  type        = number
  description = "Scheduled mode: how often a failed pass is retried within one execution (replica_retry_limit); a retry lands nothing twice."
  default     = 1

  validation {
    condition     = var.job_retry_limit >= 0 && floor(var.job_retry_limit) == var.job_retry_limit
    error_message = "job_retry_limit must be a whole number, 0 or more."
  }
}

variable "pass_max_seconds" {
  type        = number
  description = "Scheduled mode: PASS_MAX_SECONDS, after which a pass lands what it has, commits and exits 0, leaving the rest to the next one; null (or 0) for no bound. Keep it below job_replica_timeout_seconds (by at least 60 s, for the final landing and the start) so the pass ends itself instead of being stopped, and below the schedule's interval so passes do not overlap."
  default     = null
  nullable    = true

  validation {
    condition     = coalesce(var.pass_max_seconds, 0) >= 0 && floor(coalesce(var.pass_max_seconds, 0)) == coalesce(var.pass_max_seconds, 0)
    error_message = "pass_max_seconds must be a whole number of seconds, 0 or more (or null)."
  }

  validation {
    condition     = coalesce(var.pass_max_seconds, 0) + 60 <= var.job_replica_timeout_seconds
    error_message = "pass_max_seconds must stay at least 60 s below job_replica_timeout_seconds: the pass needs that long to start, land its last batches and commit before the replica is stopped."
  }
}

variable "key_vault_name" {
  type        = string
  description = "Name of the Key Vault holding the Kafka (and optional Redis) credentials; globally unique, 3-24 characters."
}

variable "tenant_id" {
  type        = string
  description = "Entra tenant id of the Key Vault."
}

variable "deployer_principal_id" {
  type        = string
  description = "Object id of whoever runs terraform apply; gets Key Vault Secrets Officer on this vault to write the secrets."
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Log Analytics workspace that receives the container logs."
}

variable "identity_id" {
  type        = string
  description = "Resource id of the worker's user-assigned identity."
}

variable "identity_principal_id" {
  type        = string
  description = "Object id of the worker's user-assigned identity (Key Vault and registry roles)."
}

variable "image" {
  type        = string
  description = "Worker image reference, e.g. myregistry.azurecr.io/superhero-worker:1.0.0."
}

variable "registry_server" {
  type        = string
  description = "Registry host to pull the image from with the worker identity (e.g. myregistry.azurecr.io); null for a public image."
  default     = null
  nullable    = true
}

variable "registry_id" {
  type        = string
  description = "Resource id of an Azure Container Registry to grant AcrPull on; null if the registry is not in Azure or already grants it."
  default     = null
  nullable    = true
}

variable "cpu" {
  type        = number
  description = "vCPU per replica (Consumption profile: 0.25-4 in 0.25 steps, memory = 2 x cpu Gi)."
  default     = 0.5
}

variable "memory" {
  type        = string
  description = "Memory per replica, matching cpu (0.5 vCPU -> \"1Gi\")."
  default     = "1Gi"
}

variable "min_replicas" {
  type        = number
  description = "Daemon mode: replicas kept running; at least 1 because a Kafka consumer must stay connected."
  default     = 1

  validation {
    condition     = var.min_replicas >= 1
    error_message = "min_replicas must be at least 1: the worker is an always-on Kafka consumer."
  }
}

variable "max_replicas" {
  type        = number
  description = "Daemon mode: upper bound for the Kafka-lag scale rule; more replicas than topic partitions sit idle."
  default     = 3
}

variable "lag_threshold" {
  type        = number
  description = "Daemon mode: consumer-group lag per replica that makes KEDA add a replica."
  default     = 1000
}

variable "metrics_port" {
  type        = number
  description = "Port of METRICS_ADDR inside the container; daemon mode probes /healthz and /readyz there."
  default     = 9090
}

variable "env" {
  type        = map(string)
  description = "Plain (non-secret) environment of the worker, in both modes: RAW_URL, AZURE_STORAGE_ACCOUNT_NAME, AZURE_CLIENT_ID, KAFKA_*, BATCH_*, LOG_FORMAT, RUST_LOG, METRICS_ADDR ... (not BATCH_CONTINUOUS or PASS_MAX_SECONDS: mode and pass_max_seconds set them; nor APPLICATIONINSIGHTS_*: application_insights sets them)."

  validation {
    condition     = length(setintersection(keys(var.env), ["BATCH_CONTINUOUS", "PASS_MAX_SECONDS"])) == 0
    error_message = "env must not set BATCH_CONTINUOUS or PASS_MAX_SECONDS: choose mode = \"scheduled\" and pass_max_seconds instead."
  }

  validation {
    condition     = length(setintersection(keys(var.env), ["APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])) == 0
    error_message = "env must not set APPLICATIONINSIGHTS_CONNECTION_STRING or APPLICATIONINSIGHTS_AUTHENTICATION_STRING: set application_insights instead."
  }
}

variable "application_insights" {
  type = object({
    connection_string = string
    client_id         = string
  })
  description = "Metrics export to Application Insights, in both modes: its connection string (APPLICATIONINSIGHTS_CONNECTION_STRING, passed as a Container Apps secret) and the worker identity's client id (APPLICATIONINSIGHTS_AUTHENTICATION_STRING = ClientId=<client_id>;Authorization=AAD). Ingestion is Entra-only: the identity needs Monitoring Metrics Publisher on the resource. An object so that whether the export is on is known at plan time while both values are not yet; null sets neither variable (no export)."
  default     = null
  nullable    = true

  validation {
    condition     = var.application_insights == null || try(var.application_insights.connection_string != "" && var.application_insights.client_id != "", false)
    error_message = "application_insights needs a non-empty connection_string and client_id; use null for no export."
  }
}

variable "kafka_brokers" {
  type        = string
  description = "Kafka bootstrap servers (comma-separated host:port), for the KEDA scale rule."
}

variable "kafka_group_id" {
  type        = string
  description = "Consumer group whose lag drives scaling."
}

variable "kafka_topics" {
  type        = list(string)
  description = "Topics the worker consumes; with exactly one the scale rule watches it, otherwise every topic of the group."
}

variable "kafka_sasl_mechanism" {
  type        = string
  description = "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  default     = "PLAIN"

  validation {
    condition     = contains(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], var.kafka_sasl_mechanism)
    error_message = "kafka_sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  }
}

variable "kafka_sasl_username" {
  type        = string
  description = "SASL user name; written to Key Vault as a write-only value (never stored in Terraform state)."
  sensitive   = true
  ephemeral   = true
  nullable    = false
}

variable "kafka_sasl_password" {
  type        = string
  description = "SASL password; written to Key Vault as a write-only value (never stored in Terraform state)."
  sensitive   = true
  ephemeral   = true
  nullable    = false
}

variable "redis_url" {
  type        = string
  description = "REDIS_URL for the worker's cleanup job (may contain a password); written to Key Vault write-only. Used only when redis_enabled is true."
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "redis_enabled" {
  type        = bool
  description = "Store redis_url in Key Vault and pass it as REDIS_URL."
  default     = false
}

variable "secret_version" {
  type        = number
  description = "Bump to push new values of the write-only secrets (rotation); Terraform cannot see the values, only this number."
  default     = 1
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
  default     = {}
}
