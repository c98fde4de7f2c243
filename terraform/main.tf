# Root module: composes the nested modules into the dataflow described in README.md.
#
#   Kafka -> worker (laptop, VM or modules/worker_app: daemon app or scheduled job)
#         -> data account / raw   (gzipped JSON lines)
#         -> Event Grid BlobCreated (modules/events) -> Function App `transform` (modules/function)
#         -> data account / standard (Delta tables staged by `transform`, committed by the timer
#            function `commit`; or plain Parquet; _deadletter/, _receipts/)
#
# Nested modules never call each other; every cross-module value flows through here.

data "azurerm_client_config" "current" {}

locals {
  # Stable, subscription-specific suffix so globally unique names do not collide between users.
  name_suffix = var.name_suffix != "" ? var.name_suffix : substr(sha1("${data.azurerm_client_config.current.subscription_id}/${var.project}/${var.environment}"), 0, 6)
}

module "naming" {
  source      = "./modules/naming"
  project     = var.project
  environment = var.environment
  suffix      = local.name_suffix
  tags        = var.tags
}

resource "azurerm_resource_group" "this" {
  name     = module.naming.resource_group
  location = var.location
  tags     = module.naming.tags
}

module "monitoring" {
  source                       = "./modules/monitoring"
  resource_group_name          = azurerm_resource_group.this.name
  location                     = azurerm_resource_group.this.location
  log_analytics_workspace_name = module.naming.names.log_analytics_workspace
  application_insights_name    = module.naming.names.application_insights
  retention_in_days            = var.log_retention_in_days
  daily_quota_gb               = var.log_daily_quota_gb
  tags                         = module.naming.tags

  # Alerts (modules/monitoring/README.md). The dead-letter alert exists once the system topic
  # does; the object wrapper keeps that decision known at plan time.
  alert_emails               = var.alert_emails
  consumer_lag_threshold     = var.consumer_lag_threshold
  function_failure_threshold = var.function_failure_threshold
  eventgrid_system_topic     = var.enable_blob_trigger_subscription ? { id = module.events[0].system_topic_id } : null

  # Keys are static so for_each is known at plan time; ids may be unknown until apply.
  diagnostic_targets = merge(
    module.storage.diagnostic_targets,
    { function_app = { resource_id = module.function.function_app_id, logs = true, metrics = true } },
    var.enable_blob_trigger_subscription ? { eventgrid_topic = { resource_id = module.events[0].system_topic_id, logs = true, metrics = true } } : {},
  )
}

module "storage" {
  source                     = "./modules/storage"
  resource_group_name        = azurerm_resource_group.this.name
  location                   = azurerm_resource_group.this.location
  data_account_name          = module.naming.data_storage_account
  runtime_account_name       = module.naming.runtime_storage_account
  data_replication_type      = var.data_replication_type
  raw_retention_days         = var.raw_retention_days
  soft_delete_retention_days = var.soft_delete_retention_days
  tags                       = module.naming.tags
}

module "identity" {
  source                    = "./modules/identity"
  resource_group_name       = azurerm_resource_group.this.name
  location                  = azurerm_resource_group.this.location
  worker_identity_name      = module.naming.names.worker_identity
  transformer_identity_name = module.naming.names.transformer_identity
  raw_container_id          = module.storage.raw_container_id
  standard_container_id     = module.storage.standard_container_id
  poison_queue_id           = module.storage.poison_queue_id
  runtime_account_id        = module.storage.runtime_account_id
  application_insights_id   = module.monitoring.application_insights_id
  data_operator_principal_ids = var.grant_deployer_data_access ? {
    deployer = data.azurerm_client_config.current.object_id
  } : {}
  tags = module.naming.tags
}

module "function" {
  source                                 = "./modules/function"
  resource_group_name                    = azurerm_resource_group.this.name
  location                               = azurerm_resource_group.this.location
  service_plan_name                      = module.naming.names.service_plan
  function_app_name                      = module.naming.function_app
  instance_memory_in_mb                  = var.function_instance_memory_in_mb
  maximum_instance_count                 = var.function_maximum_instance_count
  runtime_version                        = var.function_runtime_version
  identity_id                            = module.identity.transformer_identity_id
  identity_client_id                     = module.identity.transformer_client_id
  runtime_account_name                   = module.storage.runtime_account_name
  runtime_blob_endpoint                  = module.storage.runtime_blob_endpoint
  deployment_container_name              = module.storage.deployment_container_name
  data_account_name                      = module.storage.data_account_name
  data_blob_endpoint                     = module.storage.data_blob_endpoint
  data_queue_endpoint                    = module.storage.data_queue_endpoint
  raw_container_name                     = module.storage.raw_container_name
  standard_container_name                = module.storage.standard_container_name
  application_insights_connection_string = module.monitoring.application_insights_connection_string
  parquet_compression                    = var.parquet_compression
  standard_format                        = var.standard_format
  vacuum_retention_hours                 = var.vacuum_retention_hours
  log_format                             = var.log_format
  rust_log                               = var.rust_log
  blob_webhook_enabled                   = var.enable_blob_trigger_subscription
  tags                                   = module.naming.tags

  # The host must never start without its storage roles (it would cache 403s and crash-loop).
  depends_on = [module.identity]
}

module "events" {
  count                          = var.enable_blob_trigger_subscription ? 1 : 0
  source                         = "./modules/events"
  resource_group_name            = azurerm_resource_group.this.name
  location                       = azurerm_resource_group.this.location
  system_topic_name              = module.naming.names.eventgrid_system_topic
  subscription_name              = module.naming.names.eventgrid_subscription
  source_storage_account_id      = module.storage.data_account_id
  container_name                 = module.storage.raw_container_name
  function_id                    = module.function.function_id
  max_delivery_attempts          = var.event_max_delivery_attempts
  event_time_to_live_minutes     = var.event_time_to_live_minutes
  dead_letter_storage_account_id = module.storage.runtime_account_id
  dead_letter_container_name     = module.storage.dead_letter_container_name
  dead_letter_container_id       = module.storage.dead_letter_container_id
  tags                           = module.naming.tags
}

locals {
  # Settings the worker reads, shared by env/azure.env and the container app. Null-valued knobs
  # are left out so the worker's own defaults apply.
  worker_settings = { for k, v in {
    RAW_URL                    = "az://${module.storage.raw_container_name}"
    STANDARD_URL               = "az://${module.storage.standard_container_name}"
    AZURE_STORAGE_ACCOUNT_NAME = module.storage.data_account_name
    KAFKA_BROKERS              = var.kafka_brokers
    KAFKA_GROUP_ID             = var.kafka_group_id
    KAFKA_TOPICS               = join(",", var.kafka_topics)
    KAFKA_SECURITY_PROTOCOL    = var.kafka_security_protocol
    KAFKA_SASL_MECHANISM       = var.kafka_sasl_mechanism
    BATCH_SIZE                 = var.batch_size == null ? null : tostring(var.batch_size)
    BATCH_MAX_BYTES            = var.batch_max_bytes == null ? null : tostring(var.batch_max_bytes)
    BATCH_MAX_WAIT_MS          = var.batch_max_wait_ms == null ? null : tostring(var.batch_max_wait_ms)
    CLEANUP_ENABLED            = tostring(var.cleanup_enabled)
    REDIS_EXPIRY               = var.redis_expiry
    METRICS_ADDR               = "0.0.0.0:9090"
    LOG_FORMAT                 = var.log_format
    RUST_LOG                   = var.rust_log
  } : k => v if v != null }
}

module "worker_app" {
  count                          = var.enable_worker_app ? 1 : 0
  source                         = "./modules/worker_app"
  resource_group_name            = azurerm_resource_group.this.name
  location                       = azurerm_resource_group.this.location
  container_app_environment_name = module.naming.names.container_app_environment
  container_app_name             = module.naming.names.container_app
  key_vault_name                 = module.naming.key_vault
  tenant_id                      = data.azurerm_client_config.current.tenant_id
  deployer_principal_id          = data.azurerm_client_config.current.object_id
  log_analytics_workspace_id     = module.monitoring.log_analytics_workspace_id
  identity_id                    = module.identity.worker_identity_id
  identity_principal_id          = module.identity.worker_principal_id
  image                          = var.worker_image
  registry_server                = var.worker_registry_server
  registry_id                    = var.worker_registry_id
  max_replicas                   = var.worker_max_replicas
  mode                           = var.worker_mode
  job_name                       = module.naming.names.container_app_job
  schedule_cron                  = var.worker_schedule_cron
  job_replica_timeout_seconds    = var.worker_job_replica_timeout_seconds
  job_retry_limit                = var.worker_job_retry_limit
  pass_max_seconds               = var.worker_pass_max_seconds
  env                            = merge(local.worker_settings, { AZURE_CLIENT_ID = module.identity.worker_client_id })
  kafka_brokers                  = var.kafka_brokers
  kafka_group_id                 = var.kafka_group_id
  kafka_topics                   = var.kafka_topics
  kafka_sasl_mechanism           = var.kafka_sasl_mechanism
  kafka_sasl_username            = var.kafka_sasl_username
  kafka_sasl_password            = var.kafka_sasl_password
  redis_enabled                  = var.cleanup_enabled
  redis_url                      = var.redis_url
  secret_version                 = var.worker_secret_version
  tags                           = module.naming.tags

  # The worker pushes its metrics to Application Insights itself, with Entra ID (the identity
  # module grants the worker identity Monitoring Metrics Publisher). An object, so whether the
  # export is on is known at plan time although both values are known only after apply.
  application_insights = {
    connection_string = module.monitoring.application_insights_connection_string
    client_id         = module.identity.worker_client_id
  }
}

check "worker_app_inputs" {
  assert {
    condition     = !var.enable_worker_app || (var.worker_image != null && var.kafka_security_protocol == "SASL_SSL")
    error_message = "enable_worker_app needs worker_image and kafka_security_protocol = \"SASL_SSL\" (credentials come from Key Vault)."
  }
}
