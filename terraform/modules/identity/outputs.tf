output "worker_identity_id" {
  description = "Resource id of the worker identity (attach it to the container app)."
  value       = azurerm_user_assigned_identity.worker.id
}

output "worker_client_id" {
  description = "Client id of the worker identity (AZURE_CLIENT_ID for the worker)."
  value       = azurerm_user_assigned_identity.worker.client_id
}

output "worker_principal_id" {
  description = "Object id of the worker identity (for extra role assignments)."
  value       = azurerm_user_assigned_identity.worker.principal_id
}

output "transformer_identity_id" {
  description = "Resource id of the transformer identity (attach it to the Function App)."
  value       = azurerm_user_assigned_identity.transformer.id
}

output "transformer_client_id" {
  description = "Client id of the transformer identity (AZURE_CLIENT_ID and the *__clientId connection settings)."
  value       = azurerm_user_assigned_identity.transformer.client_id
}

output "transformer_principal_id" {
  description = "Object id of the transformer identity."
  value       = azurerm_user_assigned_identity.transformer.principal_id
}

output "transformer_role_assignment_ids" {
  description = "Ids of the transformer's role assignments; the Function App depends on them so the host never starts without storage access."
  value = [
    azurerm_role_assignment.transformer_raw_read.id,
    azurerm_role_assignment.transformer_standard_write.id,
    azurerm_role_assignment.transformer_poison_queue.id,
    azurerm_role_assignment.transformer_host_blob.id,
    azurerm_role_assignment.transformer_host_queue.id,
    azurerm_role_assignment.transformer_host_table.id,
    azurerm_role_assignment.transformer_telemetry.id,
  ]
}

output "worker_role_assignment_ids" {
  description = "Ids of the worker's role assignments."
  value = [
    azurerm_role_assignment.worker_raw_write.id,
    azurerm_role_assignment.worker_telemetry.id,
  ]
}
