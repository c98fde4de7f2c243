output "log_analytics_workspace_id" {
  description = "Resource id of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.id
}

output "log_analytics_workspace_name" {
  description = "Name of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.name
}

output "application_insights_id" {
  description = "Resource id of Application Insights (scope of the Monitoring Metrics Publisher role)."
  value       = azurerm_application_insights.this.id
}

output "application_insights_connection_string" {
  description = "Application Insights connection string; carries no write permission by itself because local authentication is off."
  value       = azurerm_application_insights.this.connection_string
  sensitive   = true
}

output "diagnostic_setting_ids" {
  description = "Ids of the diagnostic settings, keyed like var.diagnostic_targets."
  value       = { for k, d in azurerm_monitor_diagnostic_setting.this : k => d.id }
}
