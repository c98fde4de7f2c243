variable "resource_group_name" {
  type        = string
  description = "Resource group for the workspace and Application Insights."
}

variable "location" {
  type        = string
  description = "Azure region for the workspace and Application Insights."
}

variable "log_analytics_workspace_name" {
  type        = string
  description = "Name of the Log Analytics workspace that receives all logs and metrics."
}

variable "application_insights_name" {
  type        = string
  description = "Name of the workspace-based Application Insights resource for the transformer."
}

variable "retention_in_days" {
  type        = number
  description = "Log Analytics retention in days (30-730); 30 is included in the ingestion price."
  default     = 30

  validation {
    condition     = var.retention_in_days >= 30 && var.retention_in_days <= 730
    error_message = "retention_in_days must be between 30 and 730."
  }
}

variable "daily_quota_gb" {
  type        = number
  description = "Daily ingestion cap in GB for the workspace (cost guard); -1 means no cap."
  default     = 1
}

variable "diagnostic_targets" {
  type = map(object({
    resource_id = string
    logs        = bool
    metrics     = bool
  }))
  description = "Resources whose platform logs (category group allLogs) and/or metrics (AllMetrics) go to the workspace, keyed by a stable name. Keys must be known at plan time."
  default     = {}

  validation {
    condition     = alltrue([for t in values(var.diagnostic_targets) : t.logs || t.metrics])
    error_message = "each diagnostic target must enable logs, metrics or both."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to the workspace and Application Insights."
  default     = {}
}
