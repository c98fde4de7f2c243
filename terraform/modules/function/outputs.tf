output "function_app_id" {
  description = "Resource id of the Function App."
  value       = azurerm_function_app_flex_consumption.this.id
}

output "function_app_name" {
  description = "Name of the Function App (target of `az functionapp deployment source config-zip`)."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "default_hostname" {
  description = "Default host name of the Function App."
  value       = azurerm_function_app_flex_consumption.this.default_hostname
}

output "service_plan_id" {
  description = "Resource id of the Flex Consumption plan."
  value       = azurerm_service_plan.this.id
}

output "app_setting_names" {
  description = "Names of the app settings the module sets (values omitted)."
  value       = sort(keys(local.app_settings))
}

output "function_id" {
  description = "Resource id of the Event Grid triggered function (<app id>/functions/<function_name>): the events module's azure_function_endpoint (Event Grid fetches the key itself)."
  value       = "${azurerm_function_app_flex_consumption.this.id}/functions/${var.function_name}"
}

output "event_grid_webhook_url" {
  description = "Webhook of the Event Grid triggered function, https://<app>/runtime/webhooks/eventgrid?functionName=<fn>&code=<eventgrid_extension key>; null until blob_webhook_enabled is true."
  value       = local.event_grid_webhook_url
  sensitive   = true
}

output "blob_webhook_url" {
  description = "Former name of event_grid_webhook_url, the same value (the function is an Event Grid trigger now, no longer a blob trigger); kept while callers still read it."
  value       = local.event_grid_webhook_url
  sensitive   = true
}
