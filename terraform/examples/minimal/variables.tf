variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into; null uses ARM_SUBSCRIPTION_ID or the az CLI default."
  default     = null
  nullable    = true
}

variable "location" {
  type        = string
  description = "Azure region; one that offers Flex Consumption."
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
  description = "0-6 lowercase letters/digits for globally unique names; empty derives one from the subscription id."
  default     = ""
}

variable "data_replication_type" {
  type        = string
  description = "Replication of the ADLS Gen2 data account."
  default     = "LRS"
}

variable "raw_retention_days" {
  type        = number
  description = "Delete raw batches after this many days; null keeps them."
  default     = 7
  nullable    = true
}

variable "function_maximum_instance_count" {
  type        = number
  description = "Flex Consumption scale-out limit (1-1000)."
  default     = 40
}

variable "log_daily_quota_gb" {
  type        = number
  description = "Daily Log Analytics ingestion cap in GB; -1 for none."
  default     = 0.5
}

variable "kafka_brokers" {
  type        = string
  description = "KAFKA_BROKERS written to the env file for the worker."
  default     = "127.0.0.1:9092"
}

variable "kafka_topics" {
  type        = list(string)
  description = "KAFKA_TOPICS written to the env file for the worker."
  default     = ["superhero-events"]
}

variable "kafka_security_protocol" {
  type        = string
  description = "KAFKA_SECURITY_PROTOCOL written to the env file: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
  default     = "PLAINTEXT"
}

variable "enable_blob_trigger_subscription" {
  type        = bool
  description = "Create the Event Grid subscription that delivers BlobCreated events to the `transform` function; true only after the function package is deployed (README.md)."
  default     = false
}
