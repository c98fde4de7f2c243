# Least privilege, no keys: each identity gets data-plane roles on the narrowest scope that works.
#
#   worker       Storage Blob Data Contributor   raw filesystem
#                Monitoring Metrics Publisher    Application Insights      (local auth is off)
#   transformer  Storage Blob Data Reader        raw filesystem            (var.transformer_raw_role)
#                Storage Blob Data Contributor   standard filesystem
#                Storage Queue Data Contributor  blob-trigger poison queue (data account)
#                Storage Blob Data Owner         runtime account           (Functions host storage)
#                Storage Queue Data Contributor  runtime account           (host's internal blob-trigger queue)
#                Storage Table Data Contributor  runtime account           (host diagnostic events, AZFD0003)
#                Monitoring Metrics Publisher    Application Insights      (local auth is off)
#
# Not granted: Storage Account Contributor (Microsoft lists it for the *polling* blob trigger only;
# it can read account keys), any role on the resource group or subscription.

resource "azurerm_user_assigned_identity" "worker" {
  name                = var.worker_identity_name
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_user_assigned_identity" "transformer" {
  name                = var.transformer_identity_name
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_role_assignment" "worker_raw_write" {
  scope                = var.raw_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.worker.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Worker lands gzipped JSON batches in raw."
}

# The worker pushes its Prometheus metrics to Application Insights itself (service/src/appinsights.rs)
# with this identity's token: ingestion is Entra-only, so without the role every export is refused.
resource "azurerm_role_assignment" "worker_telemetry" {
  scope                = var.application_insights_id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.worker.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Worker metrics export into Application Insights with Entra ID (local authentication disabled)."
}

resource "azurerm_role_assignment" "transformer_raw_read" {
  scope                = var.raw_container_id
  role_definition_name = var.transformer_raw_role
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Transformer reads the raw batch it was triggered for."
}

resource "azurerm_role_assignment" "transformer_standard_write" {
  scope                = var.standard_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Transformer writes Parquet, _deadletter/ and _receipts/ to standard."
}

resource "azurerm_role_assignment" "transformer_poison_queue" {
  scope                = var.poison_queue_id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Blob trigger parks blobs that failed 5 times on webjobs-blobtrigger-poison."
}

resource "azurerm_role_assignment" "transformer_host_blob" {
  scope                = var.runtime_account_id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Functions host storage: deployment package, locks, keys, blob receipts."
}

resource "azurerm_role_assignment" "transformer_host_queue" {
  scope                = var.runtime_account_id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Functions host storage: internal azure-webjobs-blobtrigger queue fed by the Event Grid webhook."
}

# The host stores its diagnostic events in a table of AzureWebJobsStorage; without table access
# it logs AZFD0003 ("Encountered a StorageException while trying to fetch the diagnostic
# events", which asks for read, write, delete, add and create on table storage).
resource "azurerm_role_assignment" "transformer_host_table" {
  scope                = var.runtime_account_id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Functions host storage: diagnostic events table (AZFD0003 without it)."
}

resource "azurerm_role_assignment" "transformer_telemetry" {
  scope                = var.application_insights_id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.transformer.principal_id
  principal_type       = "ServicePrincipal"
  description          = "Entra ID ingestion into Application Insights (local authentication disabled)."
}

resource "azurerm_role_assignment" "operator_raw" {
  for_each             = var.data_operator_principal_ids
  scope                = var.raw_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
  description          = "Operator ${each.key}: run the worker locally and inspect raw."
}

resource "azurerm_role_assignment" "operator_standard" {
  for_each             = var.data_operator_principal_ids
  scope                = var.standard_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
  description          = "Operator ${each.key}: run the transformer locally and inspect standard."
}
