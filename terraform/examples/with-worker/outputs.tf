output "resource_group_name" {
  description = "Resource group holding everything."
  value       = module.dataflow.resource_group_name
}

output "data_storage_account_name" {
  description = "ADLS Gen2 account with the raw and standard filesystems."
  value       = module.dataflow.data_storage_account_name
}

output "function_app_name" {
  description = "Transformer Function App; deploy transformer/dist/transformer-function.zip to it."
  value       = module.dataflow.function_app_name
}

output "deploy_function_command" {
  description = "The az command that uploads the function package (run from the repository root)."
  value       = module.dataflow.deploy_function_command
}

output "log_analytics_workspace_name" {
  description = "Log Analytics workspace with the platform logs and the transformer's traces."
  value       = module.dataflow.log_analytics_workspace_name
}

output "blob_trigger_subscription_id" {
  description = "Event Grid subscription feeding the transformer; null until enable_blob_trigger_subscription is true."
  value       = module.dataflow.blob_trigger_subscription_id
}

output "azure_env" {
  description = "Contents of env/azure.env (no secrets); written by terraform/scripts/write-env.sh --chdir <this directory>."
  value       = module.dataflow.azure_env
}

output "worker_container_app_name" {
  description = "Worker container app (daemon mode; null in scheduled mode)."
  value       = module.dataflow.worker_container_app_name
}

output "worker_job_name" {
  description = "Worker Container Apps Job (scheduled mode; null in daemon mode)."
  value       = module.dataflow.worker_job_name
}

output "worker_key_vault_uri" {
  description = "Key Vault holding the worker's Kafka credentials."
  value       = module.dataflow.worker_key_vault_uri
}
