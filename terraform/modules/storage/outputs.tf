output "data_account_id" {
  description = "Resource id of the ADLS Gen2 data account."
  value       = azurerm_storage_account.data.id
}

output "data_account_name" {
  description = "Name of the data account (AZURE_STORAGE_ACCOUNT_NAME for the binaries)."
  value       = azurerm_storage_account.data.name
}

output "data_blob_endpoint" {
  description = "Blob endpoint of the data account, with a trailing slash."
  value       = azurerm_storage_account.data.primary_blob_endpoint
}

output "data_queue_endpoint" {
  description = "Queue endpoint of the data account, with a trailing slash (blob trigger poison queue)."
  value       = azurerm_storage_account.data.primary_queue_endpoint
}

output "data_dfs_endpoint" {
  description = "Data Lake (dfs) endpoint of the data account."
  value       = azurerm_storage_account.data.primary_dfs_endpoint
}

output "raw_container_name" {
  description = "Name of the raw filesystem."
  value       = azurerm_storage_container.raw.name
}

output "raw_container_id" {
  description = "Resource Manager id of the raw filesystem (role assignment scope)."
  value       = azurerm_storage_container.raw.id
}

output "standard_container_name" {
  description = "Name of the standard filesystem."
  value       = azurerm_storage_container.standard.name
}

output "standard_container_id" {
  description = "Resource Manager id of the standard filesystem (role assignment scope)."
  value       = azurerm_storage_container.standard.id
}

output "poison_queue_id" {
  description = "Resource Manager id of the blob trigger poison queue (role assignment scope)."
  value       = azurerm_storage_queue.blob_trigger_poison.id
}

output "runtime_account_id" {
  description = "Resource id of the Functions runtime account."
  value       = azurerm_storage_account.runtime.id
}

output "runtime_account_name" {
  description = "Name of the Functions runtime account (AzureWebJobsStorage__accountName)."
  value       = azurerm_storage_account.runtime.name
}

output "runtime_blob_endpoint" {
  description = "Blob endpoint of the runtime account, with a trailing slash."
  value       = azurerm_storage_account.runtime.primary_blob_endpoint
}

output "deployment_container_name" {
  description = "Container holding the Flex Consumption deployment package."
  value       = azurerm_storage_container.deployment.name
}

output "dead_letter_container_name" {
  description = "Container receiving Event Grid dead letters."
  value       = azurerm_storage_container.dead_letter.name
}

output "dead_letter_container_id" {
  description = "Resource Manager id of the dead-letter container (role assignment scope)."
  value       = azurerm_storage_container.dead_letter.id
}

output "diagnostic_targets" {
  description = "Storage resources that should send logs/metrics to Log Analytics, keyed by a stable name: the accounts (metrics only) and their blob and queue services (logs and metrics)."
  value = {
    data_account    = { resource_id = azurerm_storage_account.data.id, logs = false, metrics = true }
    data_blob       = { resource_id = "${azurerm_storage_account.data.id}/blobServices/default", logs = true, metrics = true }
    data_queue      = { resource_id = "${azurerm_storage_account.data.id}/queueServices/default", logs = true, metrics = true }
    runtime_account = { resource_id = azurerm_storage_account.runtime.id, logs = false, metrics = true }
    runtime_blob    = { resource_id = "${azurerm_storage_account.runtime.id}/blobServices/default", logs = true, metrics = true }
    runtime_queue   = { resource_id = "${azurerm_storage_account.runtime.id}/queueServices/default", logs = true, metrics = true }
  }
}
