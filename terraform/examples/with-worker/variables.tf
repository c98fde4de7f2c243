variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into; null uses ARM_SUBSCRIPTION_ID or the az CLI default."
  default     = null
  nullable    = true
}

variable "location" {
  type        = string
  description = "Azure region; one that offers Flex Consumption and Container Apps."
}

variable "project" {
  type        = string
  description = "Short project name used in resource names (2-10 lowercase letters/digits)."
  default     = "superhero"
}

variable "environment" {
  type        = string
  description = "Deployment stage: dev, test, staging or prod."
  default     = "prod"
}

variable "name_suffix" {
  type        = string
  description = "0-6 lowercase letters/digits for globally unique names; empty derives one from the subscription id."
  default     = ""
}

variable "data_replication_type" {
  type        = string
  description = "Replication of the ADLS Gen2 data account."
  default     = "ZRS"
}

variable "raw_retention_days" {
  type        = number
  description = "Delete raw batches after this many days; null keeps them."
  default     = 30
  nullable    = true
}

variable "kafka_brokers" {
  type        = string
  description = "KAFKA_BROKERS: the managed Kafka's bootstrap servers."
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
  description = "KAFKA_SECURITY_PROTOCOL; the container app needs SASL_SSL."
  default     = "SASL_SSL"
}

variable "kafka_sasl_mechanism" {
  type        = string
  description = "KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  default     = "PLAIN"
}

variable "kafka_sasl_username" {
  type        = string
  description = "SASL user, stored in Key Vault write-only. Pass with TF_VAR_kafka_sasl_username."
  sensitive   = true
  ephemeral   = true
}

variable "kafka_sasl_password" {
  type        = string
  description = "SASL password, stored in Key Vault write-only. Pass with TF_VAR_kafka_sasl_password."
  sensitive   = true
  ephemeral   = true
}

variable "worker_image" {
  type        = string
  description = "Worker image in a registry the worker identity can pull from."
}

variable "worker_registry_server" {
  type        = string
  description = "Registry host the container app pulls from with the worker identity; null for a public image."
  default     = null
  nullable    = true
}

variable "worker_registry_id" {
  type        = string
  description = "Resource id of an Azure Container Registry to grant the worker AcrPull on; null to grant it yourself."
  default     = null
  nullable    = true
}

variable "worker_max_replicas" {
  type        = number
  description = "Daemon mode: maximum worker replicas; no more than the topics' partition count."
  default     = 3
}

variable "worker_mode" {
  type        = string
  description = "daemon (an always-on container app) or scheduled (a Container Apps Job running one pass on worker_schedule_cron)."
  default     = "daemon"
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
  description = "Scheduled mode: retries of a failed pass within one execution."
  default     = 1
}

variable "worker_pass_max_seconds" {
  type        = number
  description = "Scheduled mode: PASS_MAX_SECONDS, after which a pass lands what it has and exits 0; null for no bound. At least 60 s below worker_job_replica_timeout_seconds."
  default     = null
  nullable    = true
}

variable "worker_secret_version" {
  type        = number
  description = "Bump to push new Kafka secret values to Key Vault."
  default     = 1
}

variable "env_credential" {
  type        = string
  description = "Credential written to env/azure.env: managed-identity (a host with the worker identity) or azure-cli."
  default     = "managed-identity"
}

variable "enable_blob_trigger_subscription" {
  type        = bool
  description = "Create the Event Grid subscription that delivers BlobCreated events to the `transform` function; true only after the function package is deployed (README.md)."
  default     = false
}
