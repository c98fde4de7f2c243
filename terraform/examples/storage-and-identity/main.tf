# Using the nested modules without the root: only the data lake, the identities and monitoring,
# e.g. to run both binaries outside Azure (laptop, VM, Kubernetes) against real ADLS Gen2.
# Module sources are relative because the modules are not published to a registry.

module "naming" {
  source      = "../../modules/naming"
  project     = "superhero"
  environment = "test"
  suffix      = var.suffix
}

resource "azurerm_resource_group" "this" {
  name     = module.naming.resource_group
  location = var.location
  tags     = module.naming.tags
}

module "storage" {
  source               = "../../modules/storage"
  resource_group_name  = azurerm_resource_group.this.name
  location             = azurerm_resource_group.this.location
  data_account_name    = module.naming.data_storage_account
  runtime_account_name = module.naming.runtime_storage_account
  raw_retention_days   = 7
  tags                 = module.naming.tags
}

module "monitoring" {
  source                       = "../../modules/monitoring"
  resource_group_name          = azurerm_resource_group.this.name
  location                     = azurerm_resource_group.this.location
  log_analytics_workspace_name = module.naming.names.log_analytics_workspace
  application_insights_name    = module.naming.names.application_insights
  diagnostic_targets           = module.storage.diagnostic_targets
  tags                         = module.naming.tags
}

module "identity" {
  source                    = "../../modules/identity"
  resource_group_name       = azurerm_resource_group.this.name
  location                  = azurerm_resource_group.this.location
  worker_identity_name      = module.naming.names.worker_identity
  transformer_identity_name = module.naming.names.transformer_identity
  raw_container_id          = module.storage.raw_container_id
  standard_container_id     = module.storage.standard_container_id
  poison_queue_id           = module.storage.poison_queue_id
  runtime_account_id        = module.storage.runtime_account_id
  application_insights_id   = module.monitoring.application_insights_id
  tags                      = module.naming.tags
}
