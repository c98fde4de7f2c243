variable "resource_group_name" {
  type        = string
  description = "Resource group for the user-assigned identities."
}

variable "location" {
  type        = string
  description = "Azure region for the user-assigned identities."
}

variable "worker_identity_name" {
  type        = string
  description = "Name of the worker's user-assigned identity (writes raw)."
}

variable "transformer_identity_name" {
  type        = string
  description = "Name of the transformer's user-assigned identity (reads raw, writes standard, runs the Functions host)."
}

variable "raw_container_id" {
  type        = string
  description = "Resource Manager id of the raw filesystem; the narrowest scope for the worker's write role and the transformer's read role."
}

variable "standard_container_id" {
  type        = string
  description = "Resource Manager id of the standard filesystem; scope of the transformer's write role."
}

variable "poison_queue_id" {
  type        = string
  description = "Resource Manager id of the blob trigger poison queue on the data account; scope of the transformer's queue role."
}

variable "runtime_account_id" {
  type        = string
  description = "Resource id of the Functions runtime account; the host needs blob, queue and table data roles on it."
}

variable "application_insights_id" {
  type        = string
  description = "Resource id of Application Insights; the worker and the transformer publish telemetry there with Entra ID (local auth is off)."
}

variable "transformer_raw_role" {
  type        = string
  description = "Role the transformer gets on the raw filesystem. Reader is enough for the custom handler; Microsoft's blob-trigger guidance lists Owner, use it only if the host logs 403s on raw."
  default     = "Storage Blob Data Reader"

  validation {
    condition     = contains(["Storage Blob Data Reader", "Storage Blob Data Contributor", "Storage Blob Data Owner"], var.transformer_raw_role)
    error_message = "transformer_raw_role must be Storage Blob Data Reader, Storage Blob Data Contributor or Storage Blob Data Owner."
  }
}

variable "data_operator_principal_ids" {
  type        = map(string)
  description = "People or pipelines (object ids, keyed by a stable label) that get Storage Blob Data Contributor on raw and standard, e.g. to run the worker from a laptop with `az login`. Empty grants nothing."
  default     = {}
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to the identities."
  default     = {}
}
