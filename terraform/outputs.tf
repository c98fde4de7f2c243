output "resource_group_name" {
  description = "Resource group holding everything (delete it to tear down what apply created)."
  value       = azurerm_resource_group.this.name
}

output "data_storage_account_name" {
  description = "ADLS Gen2 account with the raw and standard filesystems (AZURE_STORAGE_ACCOUNT_NAME)."
  value       = module.storage.data_account_name
}

output "raw_url" {
  description = "RAW_URL for the binaries."
  value       = "az://${module.storage.raw_container_name}"
}

output "standard_url" {
  description = "STANDARD_URL for the binaries."
  value       = "az://${module.storage.standard_container_name}"
}

output "worker_client_id" {
  description = "Client id of the worker's user-assigned identity (AZURE_CLIENT_ID where that identity is attached)."
  value       = module.identity.worker_client_id
}

output "transformer_client_id" {
  description = "Client id of the transformer's user-assigned identity."
  value       = module.identity.transformer_client_id
}

output "function_app_name" {
  description = "Transformer Function App; deploy transformer/dist/transformer-function.zip to it."
  value       = module.function.function_app_name
}

output "function_app_hostname" {
  description = "Default host name of the transformer Function App."
  value       = module.function.default_hostname
}

output "deploy_function_command" {
  description = "Command that uploads the package built by scripts/package-function (run from the repository root)."
  value       = "az functionapp deployment source config-zip --resource-group ${azurerm_resource_group.this.name} --name ${module.function.function_app_name} --src transformer/dist/transformer-function.zip"
}

output "log_analytics_workspace_name" {
  description = "Log Analytics workspace with platform logs, metrics and the transformer's traces."
  value       = module.monitoring.log_analytics_workspace_name
}

output "blob_trigger_subscription_id" {
  description = "Event Grid subscription feeding the transformer; null until enable_blob_trigger_subscription is true."
  value       = var.enable_blob_trigger_subscription ? module.events[0].subscription_id : null
}

output "worker_container_app_name" {
  description = "Worker container app; null unless enable_worker_app is true and worker_mode is daemon."
  value       = var.enable_worker_app ? module.worker_app[0].container_app_name : null
}

output "worker_job_name" {
  description = "Worker Container Apps Job (one pass per execution); null unless enable_worker_app is true and worker_mode is scheduled."
  value       = var.enable_worker_app ? module.worker_app[0].job_name : null
}

output "worker_key_vault_uri" {
  description = "Key Vault holding the worker's Kafka credentials; null unless enable_worker_app is true."
  value       = var.enable_worker_app ? module.worker_app[0].key_vault_uri : null
}

output "azure_env" {
  description = "Contents of env/azure.env (KEY=VALUE lines, no secrets); written by terraform/scripts/write-env.sh."
  value = join("\n", concat(
    [
      "# Generated from Terraform outputs by terraform/scripts/write-env.sh: do not edit, do not commit.",
      "# Resource group ${azurerm_resource_group.this.name}, region ${azurerm_resource_group.this.location}.",
      "",
      "# Storage: the ADLS Gen2 account and its two filesystems (object_store reads AZURE_* itself).",
    ],
    [for k in ["AZURE_STORAGE_ACCOUNT_NAME", "RAW_URL", "STANDARD_URL"] : "${k}=${local.worker_settings[k]}"],
    [
      "",
      "# Credential. No account keys exist: the accounts accept Entra ID only.",
    ],
    var.env_credential == "azure-cli" ? [
      "# Laptop: uses your `az login` session (needs grant_deployer_data_access or your own data role).",
      "AZURE_USE_AZURE_CLI=true",
      "# On a host with the worker identity attached, use it instead:",
      "# AZURE_CLIENT_ID=${module.identity.worker_client_id}",
      ] : [
      "# Host with the worker's user-assigned identity attached (IMDS / IDENTITY_ENDPOINT).",
      "AZURE_CLIENT_ID=${module.identity.worker_client_id}",
      "# From a laptop instead: comment the line above and use",
      "# AZURE_USE_AZURE_CLI=true",
    ],
    [
      "",
      "# Kafka. KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD are secrets: export them from your secret store.",
    ],
    [for k in ["KAFKA_BROKERS", "KAFKA_GROUP_ID", "KAFKA_TOPICS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"] : "${k}=${local.worker_settings[k]}"],
    [
      "",
      "# Batching and cleanup (commented lines keep the worker's defaults).",
    ],
    [for k in ["BATCH_SIZE", "BATCH_MAX_BYTES", "BATCH_MAX_WAIT_MS", "CLEANUP_ENABLED", "REDIS_EXPIRY"] : lookup(local.worker_settings, k, null) == null ? "# ${k}=" : "${k}=${local.worker_settings[k]}"],
    ["# REDIS_URL= (secret: export it yourself when CLEANUP_ENABLED=true)"],
    [
      "",
      "# Telemetry.",
    ],
    [for k in ["METRICS_ADDR", "LOG_FORMAT", "RUST_LOG"] : "${k}=${local.worker_settings[k]}"],
    [
      "PARQUET_COMPRESSION=${var.parquet_compression}",
      "# What standard holds, as the Function App writes it (a transformer run from here must match).",
      "STANDARD_FORMAT=${var.standard_format}",
      "",
    ],
  ))
}
