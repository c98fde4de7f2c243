output "container_app_id" {
  description = "Resource id of the worker container app; null in scheduled mode."
  value       = one(azurerm_container_app.worker[*].id)
}

output "container_app_name" {
  description = "Name of the worker container app (az containerapp logs show -n <name>); null in scheduled mode."
  value       = one(azurerm_container_app.worker[*].name)
}

output "job_id" {
  description = "Resource id of the worker Container Apps Job; null in daemon mode."
  value       = one(azurerm_container_app_job.worker[*].id)
}

output "job_name" {
  description = "Name of the worker Container Apps Job (az containerapp job execution list -n <name>); null in daemon mode."
  value       = one(azurerm_container_app_job.worker[*].name)
}

output "container_app_environment_id" {
  description = "Resource id of the Container Apps environment."
  value       = azurerm_container_app_environment.this.id
}

output "key_vault_id" {
  description = "Resource id of the Key Vault holding the worker's secrets."
  value       = azurerm_key_vault.this.id
}

output "key_vault_uri" {
  description = "URI of the Key Vault."
  value       = azurerm_key_vault.this.vault_uri
}

output "secret_names" {
  description = "Key Vault secret names used by the worker, by role."
  value       = local.secret_names
}
