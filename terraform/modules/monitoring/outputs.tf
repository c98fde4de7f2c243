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

output "action_group_id" {
  description = "Resource id of the alerts' action group; null when alert_emails is empty."
  value       = length(azurerm_monitor_action_group.alerts) > 0 ? azurerm_monitor_action_group.alerts[0].id : null
}

output "alert_ids" {
  description = "Resource ids of the alert rules, keyed poison_blobs, function_failures, consumer_lag and (with eventgrid_system_topic) eventgrid_deadletter."
  value = merge(
    {
      poison_blobs      = azurerm_monitor_scheduled_query_rules_alert_v2.poison_blobs.id
      function_failures = azurerm_monitor_scheduled_query_rules_alert_v2.function_failures.id
      consumer_lag      = azurerm_monitor_scheduled_query_rules_alert_v2.consumer_lag.id
    },
    { for a in azurerm_monitor_metric_alert.eventgrid_deadletter : "eventgrid_deadletter" => a.id },
  )
}
