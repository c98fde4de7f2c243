variable "resource_group_name" {
  type        = string
  description = "Resource group that holds both storage accounts."
}

variable "location" {
  type        = string
  description = "Azure region for both storage accounts."
}

variable "data_account_name" {
  type        = string
  description = "Name of the ADLS Gen2 (hierarchical namespace) account holding the raw and standard filesystems."
}

variable "runtime_account_name" {
  type        = string
  description = "Name of the plain StorageV2 account used by the Functions host (deployment package, host state) and for Event Grid dead letters."
}

variable "raw_container_name" {
  type        = string
  description = "Filesystem the worker writes gzipped JSON batches to (RAW_URL = az://<this>)."
  default     = "raw"
}

variable "standard_container_name" {
  type        = string
  description = "Filesystem the transformer writes Parquet, _deadletter/ and _receipts/ to (STANDARD_URL = az://<this>)."
  default     = "standard"
}

variable "deployment_container_name" {
  type        = string
  description = "Container in the runtime account that holds the Flex Consumption deployment package."
  default     = "function-releases"
}

variable "dead_letter_container_name" {
  type        = string
  description = "Container in the runtime account where Event Grid writes events it could not deliver."
  default     = "eventgrid-deadletter"
}

variable "poison_queue_name" {
  type        = string
  description = "Queue on the data account where the Functions blob trigger parks blobs that failed 5 times (name fixed by the Functions blob extension)."
  default     = "webjobs-blobtrigger-poison"
}

variable "data_replication_type" {
  type        = string
  description = "Replication of the data account: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS. ZRS survives a zone outage at a small premium over LRS."
  default     = "ZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.data_replication_type)
    error_message = "data_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "soft_delete_retention_days" {
  type        = number
  description = "Days deleted blobs and containers stay recoverable (1-365)."
  default     = 7

  validation {
    condition     = var.soft_delete_retention_days >= 1 && var.soft_delete_retention_days <= 365
    error_message = "soft_delete_retention_days must be between 1 and 365."
  }
}

variable "raw_retention_days" {
  type        = number
  description = "Delete raw batches this many days after they were written (lifecycle rule); null keeps them forever."
  default     = 30
  nullable    = true

  validation {
    condition     = var.raw_retention_days == null ? true : var.raw_retention_days >= 1
    error_message = "raw_retention_days must be at least 1, or null to keep raw data forever."
  }
}

variable "raw_cool_after_days" {
  type        = number
  description = "Move raw batches to the Cool tier after this many days; null disables tiering. Must be lower than raw_retention_days to matter."
  default     = null
  nullable    = true
}

variable "public_network_access_enabled" {
  type        = bool
  description = "Keep the public endpoints reachable (with Entra ID auth only). Required unless you add private endpoints and VNet integration yourself: Event Grid and the Flex Consumption app reach storage over them."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
  default     = {}
}
