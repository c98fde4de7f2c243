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

# --- Alerts -------------------------------------------------------------------------------------

variable "alert_emails" {
  type        = list(string)
  description = "Email addresses notified by every alert (one action group); empty creates no action group, and the alerts only show in the portal."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alert_emails must be email addresses."
  }
}

variable "consumer_lag_threshold" {
  type        = number
  description = "Alert when the worker group's Kafka lag (sum of worker_consumer_lag over workers, topics and partitions, in records) stays above this for 15 minutes."
  default     = 100000
  nullable    = false

  validation {
    condition     = var.consumer_lag_threshold >= 0
    error_message = "consumer_lag_threshold must be at least 0."
  }
}

variable "function_failure_threshold" {
  type        = number
  description = "Alert when one function has more failed invocations than this in 15 minutes (0: any failure). Raise it if the transform's back-pressure 503s under a backlog are noise."
  default     = 0
  nullable    = false

  validation {
    condition     = var.function_failure_threshold >= 0 && floor(var.function_failure_threshold) == var.function_failure_threshold
    error_message = "function_failure_threshold must be a whole number, at least 0."
  }
}

variable "eventgrid_system_topic" {
  type = object({
    id = string
  })
  description = "The Event Grid system topic whose DeadLetteredCount is alerted on; null (no topic yet) creates no dead-letter alert. An object so that whether the alert exists is known at plan time while the topic's id is not."
  default     = null
}
