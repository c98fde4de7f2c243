# Entra-only: no workspace shared keys (agents and queries authenticate with Entra ID; diagnostic
# settings and workspace-based Application Insights do not use the keys). The 5.x name of the
# flag (4.x had the negative local_authentication_disabled).
resource "azurerm_log_analytics_workspace" "this" {
  name                         = var.log_analytics_workspace_name
  resource_group_name          = var.resource_group_name
  location                     = var.location
  sku                          = "PerGB2018"
  retention_in_days            = var.retention_in_days
  daily_quota_gb               = var.daily_quota_gb
  local_authentication_enabled = false
  tags                         = var.tags
}

# Workspace-based, Entra-only ingestion: the transformer authenticates with its managed identity
# (APPLICATIONINSIGHTS_AUTHENTICATION_STRING + Monitoring Metrics Publisher), so the connection
# string alone cannot be used to write telemetry.
resource "azurerm_application_insights" "this" {
  name                         = var.application_insights_name
  resource_group_name          = var.resource_group_name
  location                     = var.location
  workspace_id                 = azurerm_log_analytics_workspace.this.id
  application_type             = "other"
  local_authentication_enabled = false
  retention_in_days            = var.retention_in_days
  tags                         = var.tags
}

resource "azurerm_monitor_diagnostic_setting" "this" {
  for_each                   = var.diagnostic_targets
  name                       = "to-${var.log_analytics_workspace_name}"
  target_resource_id         = each.value.resource_id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  dynamic "enabled_log" {
    for_each = each.value.logs ? ["allLogs"] : []
    content {
      category_group = enabled_log.value
    }
  }

  dynamic "enabled_metric" {
    for_each = each.value.metrics ? ["AllMetrics"] : []
    content {
      category = enabled_metric.value
    }
  }
}
