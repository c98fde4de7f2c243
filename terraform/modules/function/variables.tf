variable "resource_group_name" {
  type        = string
  description = "Resource group for the plan and the Function App."
}

variable "location" {
  type        = string
  description = "Azure region for the plan and the Function App (must offer Flex Consumption)."
}

variable "service_plan_name" {
  type        = string
  description = "Name of the App Service plan."
}

variable "function_app_name" {
  type        = string
  description = "Name of the Function App (<= 32 characters, globally unique)."

  validation {
    condition     = length(var.function_app_name) <= 32
    error_message = "function_app_name must be at most 32 characters (the Functions host id is its first 32 characters)."
  }
}

variable "function_name" {
  type        = string
  description = "Name of the Event Grid triggered function inside the package (folder transformer/function/<name>/function.json)."
  default     = "transform"
}

variable "sku_name" {
  type        = string
  description = "Plan SKU. FC1 (Flex Consumption) is the only one this module deploys; Linux Consumption (Y1) is being retired."
  default     = "FC1"

  validation {
    condition     = var.sku_name == "FC1"
    error_message = "sku_name must be FC1 (Flex Consumption)."
  }
}

variable "runtime_name" {
  type        = string
  description = "Flex Consumption runtime. The transformer is a custom handler (static Rust binary), so \"custom\"."
  default     = "custom"
}

variable "runtime_version" {
  type        = string
  description = "Flex Consumption runtime version. For the custom runtime the only catalogued value is \"1.0\"; an uncatalogued value is accepted by ARM but breaks the app at startup."
  default     = "1.0"
}

variable "instance_memory_in_mb" {
  type        = number
  description = "Memory per instance: 2048 or 4096 MB; sets the transforms at once per instance (WATCH_CONCURRENCY 5 or 11) and the size of compacted files (COMPACT_TARGET_MB 64 or 128). Flex also offers 512 MB, which this module refuses: the host plus one worst-case transform (256 + 300 MB) does not fit."
  default     = 2048

  validation {
    condition     = contains([2048, 4096], var.instance_memory_in_mb)
    error_message = "instance_memory_in_mb must be 2048 or 4096 (512 MB cannot hold the host plus one worst-case transform: 256 + 300 MB)."
  }
}

variable "maximum_instance_count" {
  type        = number
  description = "Upper bound on scale-out (1-1000, the provider's range); also a cost guard."
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000 && floor(var.maximum_instance_count) == var.maximum_instance_count
    error_message = "maximum_instance_count must be a whole number between 1 and 1000 (azurerm_function_app_flex_consumption accepts 1-1000)."
  }
}

variable "identity_id" {
  type        = string
  description = "Resource id of the transformer's user-assigned identity (deployment storage, host storage, data access)."
}

variable "identity_client_id" {
  type        = string
  description = "Client id of the transformer's user-assigned identity."
}

variable "runtime_account_name" {
  type        = string
  description = "Name of the runtime storage account (AzureWebJobsStorage, identity-based)."
}

variable "runtime_blob_endpoint" {
  type        = string
  description = "Blob endpoint of the runtime account, with a trailing slash."
}

variable "deployment_container_name" {
  type        = string
  description = "Container in the runtime account that holds the deployment package."
}

variable "data_account_name" {
  type        = string
  description = "Name of the ADLS Gen2 data account (AZURE_STORAGE_ACCOUNT_NAME)."
}

variable "data_blob_endpoint" {
  type        = string
  description = "Unused since the function is an Event Grid trigger (it was the blob trigger's RawStorage__blobServiceUri); optional, kept so existing callers still plan."
  default     = null
}

variable "data_queue_endpoint" {
  type        = string
  description = "Unused since the function is an Event Grid trigger (it was the blob trigger's RawStorage__queueServiceUri, for its poison queue); optional, kept so existing callers still plan."
  default     = null
}

variable "raw_container_name" {
  type        = string
  description = "Raw filesystem name (RAW_URL = az://<name>; the handler ignores events for other containers)."
}

variable "standard_container_name" {
  type        = string
  description = "Standard filesystem name (STANDARD_URL = az://<name>)."
}

variable "application_insights_connection_string" {
  type        = string
  description = "Application Insights connection string (no key material is usable: local auth is off)."
  sensitive   = true
}

variable "parquet_compression" {
  type        = string
  description = "PARQUET_COMPRESSION for the transformer."
  default     = "zstd"
}

variable "standard_format" {
  type        = string
  description = "STANDARD_FORMAT for the transformer: delta (one Delta Lake table per model plus _deadletter; invocations stage files, the timer function `commit` commits them) or parquet (one Parquet file per model per raw blob; the timer finds nothing to do)."
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

variable "log_format" {
  type        = string
  description = "LOG_FORMAT for the transformer: json or text."
  default     = "json"

  validation {
    condition     = contains(["json", "text"], var.log_format)
    error_message = "log_format must be json or text."
  }
}

variable "rust_log" {
  type        = string
  description = "RUST_LOG filter for the transformer."
  default     = "info"
}

variable "extra_app_settings" {
  type        = map(string)
  description = "Additional app settings merged over the module's own. Never put storage keys here."
  default     = {}
}

variable "blob_webhook_enabled" {
  type        = bool
  description = "Read the eventgrid_extension host key and output event_grid_webhook_url. Turn on only after the function package is deployed: the key exists once the host has loaded the Event Grid trigger. Not needed when the subscription uses function_id."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to the plan and the app."
  default     = {}
}
