variable "resource_group_name" {
  type        = string
  description = "Resource group for the system topic and its subscription."
}

variable "location" {
  type        = string
  description = "Region of the system topic; must be the source storage account's region."
}

variable "system_topic_name" {
  type        = string
  description = "Name of the Event Grid system topic on the data account."
}

variable "subscription_name" {
  type        = string
  description = "Name of the event subscription that feeds the transformer."
}

variable "source_storage_account_id" {
  type        = string
  description = "Resource id of the data account whose BlobCreated events are delivered."
}

variable "container_name" {
  type        = string
  description = "Only blobs in this container (the raw filesystem) are delivered."
}

variable "subject_ends_with" {
  type        = string
  description = "Only blobs whose name ends with this are delivered (the worker writes .json.gz); null delivers every blob in the container."
  default     = ".json.gz"
  nullable    = true
}

variable "included_apis" {
  type        = list(string)
  description = "Storage API calls that count as a finished blob: PutBlob and PutBlockList (Blob API, what object_store uses) and FlushWithClose (Data Lake API). CreateFile is left out because it fires on an empty file."
  default     = ["PutBlob", "PutBlockList", "FlushWithClose"]
}

variable "function_id" {
  type        = string
  description = "Resource id of the Event Grid triggered function (<app id>/functions/<name>): delivered as an Azure Function endpoint, Event Grid fetching the key itself (no key in state). Takes precedence over webhook_url."
  default     = null
}

variable "webhook_url" {
  type        = string
  description = "Used when function_id is null: the function's Event Grid webhook, https://<app>/runtime/webhooks/eventgrid?functionName=<fn>&code=<eventgrid_extension key>."
  default     = null
  sensitive   = true
}

variable "max_delivery_attempts" {
  type        = number
  description = "Event Grid delivery attempts before dead-lettering (1-30)."
  default     = 30

  validation {
    condition     = var.max_delivery_attempts >= 1 && var.max_delivery_attempts <= 30
    error_message = "max_delivery_attempts must be between 1 and 30."
  }
}

variable "event_time_to_live_minutes" {
  type        = number
  description = "Minutes Event Grid keeps retrying an event before dead-lettering it (1-1440)."
  default     = 1440

  validation {
    condition     = var.event_time_to_live_minutes >= 1 && var.event_time_to_live_minutes <= 1440
    error_message = "event_time_to_live_minutes must be between 1 and 1440."
  }
}

variable "dead_letter_storage_account_id" {
  type        = string
  description = "Resource id of the account holding the dead-letter container."
}

variable "dead_letter_container_name" {
  type        = string
  description = "Container that receives undeliverable events (read it to replay them)."
}

variable "dead_letter_container_id" {
  type        = string
  description = "Resource Manager id of the dead-letter container; the topic's identity gets Storage Blob Data Contributor on it only."
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to the system topic."
  default     = {}
}
