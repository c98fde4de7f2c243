output "data_storage_account_name" {
  description = "AZURE_STORAGE_ACCOUNT_NAME for the binaries."
  value       = module.storage.data_account_name
}

output "worker_client_id" {
  description = "AZURE_CLIENT_ID for a worker running with the worker identity attached."
  value       = module.identity.worker_client_id
}

output "transformer_client_id" {
  description = "AZURE_CLIENT_ID for a transformer running with the transformer identity attached."
  value       = module.identity.transformer_client_id
}
