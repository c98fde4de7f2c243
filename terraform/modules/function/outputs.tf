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

output "blob_webhook_url" {
  description = "Event Grid webhook for the Event Grid-sourced blob trigger (contains the blobs_extension system key); null until blob_webhook_enabled is true."
  value = var.blob_webhook_enabled ? format(
    "https://%s/runtime/webhooks/blobs?functionName=Host.Functions.%s&code=%s",
    azurerm_function_app_flex_consumption.this.default_hostname,
    var.function_name,
    data.azurerm_function_app_host_keys.this[0].blobs_extension_key,
  ) : null
  sensitive = true
}
