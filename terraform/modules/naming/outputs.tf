output "names" {
  description = "Map of every resource name this project uses, keyed by role (resource_group, data_storage_account, function_app, ...)."
  value       = local.names
}

output "resource_group" {
  description = "Resource group name."
  value       = local.names.resource_group
}

output "data_storage_account" {
  description = "ADLS Gen2 account holding the raw and standard filesystems."
  value       = local.names.data_storage_account
}

output "runtime_storage_account" {
  description = "Storage account for the Functions host (deployment package, host state, Event Grid dead letters)."
  value       = local.names.runtime_storage_account
}

output "function_app" {
  description = "Transformer Function App name (<= 32 characters)."
  value       = local.names.function_app
}

output "key_vault" {
  description = "Key Vault name for the worker's Kafka credentials."
  value       = local.names.key_vault
}

output "tags" {
  description = "Default tags merged with the caller's tags."
  value       = local.tags
}
