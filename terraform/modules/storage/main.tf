# Two accounts, on purpose:
#  - `data`: ADLS Gen2 (hierarchical namespace) with the `raw` and `standard` filesystems. Only
#    the worker and the transformer touch it, each through a container-scoped role.
#  - `runtime`: a plain StorageV2 account for the Functions host (deployment package, host locks,
#    blob-trigger receipts and internal queues) and Event Grid dead letters. The host needs broad
#    data roles (Blob Data Owner, Queue Data Contributor) on its storage; keeping that away from
#    the data account is what lets the data roles stay container-scoped. The Functions blob
#    extension also does not support HNS accounts for its own bookkeeping.
# Both: HTTPS only, TLS 1.2, no public blob access, shared keys off (Entra ID only).

resource "azurerm_storage_account" "data" {
  #checkov:skip=CKV_AZURE_206:Replication is a variable (default ZRS: survives a zone outage); choose GZRS or RAGZRS for geo-redundancy when the raw data cannot be replayed from Kafka.
  #checkov:skip=CKV_AZURE_33:Queue logging goes through azurerm_monitor_diagnostic_setting (monitoring module); azurerm 5.x removed the inline queue_properties block.
  #checkov:skip=CKV_AZURE_35:Default action stays Allow so Event Grid and the Flex Consumption app can reach the account without a VNet; access still requires Entra ID (shared keys are disabled).
  #checkov:skip=CKV_AZURE_59:Public endpoint kept (see CKV_AZURE_35); set public_network_access_enabled = false together with private endpoints.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption; customer-managed keys would add a Key Vault dependency the pipeline does not need.
  #checkov:skip=CKV2_AZURE_33:No private endpoint in the default deployment (cost and VNet); see CKV_AZURE_35.
  name                     = var.data_account_name
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.data_replication_type
  access_tier              = "Hot"

  is_hns_enabled                    = true
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  sftp_enabled                      = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = var.public_network_access_enabled

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    # Blob versioning and change feed are not available on HNS accounts; soft delete is.
    delete_retention_policy {
      days = var.soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "raw" {
  #checkov:skip=CKV2_AZURE_21:Read requests are logged by the blobServices/default diagnostic setting (StorageRead, monitoring module); the check wants azurerm_log_analytics_storage_insights, which needs an account key.
  name                  = var.raw_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "standard" {
  #checkov:skip=CKV2_AZURE_21:Read requests are logged by the blobServices/default diagnostic setting (StorageRead, monitoring module); the check wants azurerm_log_analytics_storage_insights, which needs an account key.
  name                  = var.standard_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

# The blob trigger's poison queue lives on the account named by the trigger's connection
# (RawStorage). Creating it here lets the transformer's queue role be scoped to this queue alone.
resource "azurerm_storage_queue" "blob_trigger_poison" {
  name               = var.poison_queue_name
  storage_account_id = azurerm_storage_account.data.id
}

resource "azurerm_storage_management_policy" "data" {
  count              = var.raw_retention_days == null && var.raw_cool_after_days == null ? 0 : 1
  storage_account_id = azurerm_storage_account.data.id

  rule {
    name    = "raw-retention"
    enabled = true

    filters {
      prefix_match = ["${var.raw_container_name}/"]
      blob_types   = ["blockBlob"]
    }

    actions {
      base_blob {
        tier_to_cool_after_days_since_modification_greater_than = var.raw_cool_after_days
        delete_after_days_since_modification_greater_than       = var.raw_retention_days
      }
    }
  }
}

resource "azurerm_storage_account" "runtime" {
  #checkov:skip=CKV_AZURE_33:Queue logging goes through azurerm_monitor_diagnostic_setting (monitoring module); azurerm 5.x removed the inline queue_properties block.
  #checkov:skip=CKV_AZURE_35:Default action stays Allow: the Flex Consumption app (no VNet) and Event Grid dead-lettering reach the account over its public endpoint with Entra ID.
  #checkov:skip=CKV_AZURE_59:Public endpoint kept (see CKV_AZURE_35).
  #checkov:skip=CKV_AZURE_206:Holds only rebuildable runtime state (package, host locks, dead letters); LRS is enough.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption.
  #checkov:skip=CKV2_AZURE_33:No private endpoint in the default deployment (cost and VNet).
  name                     = var.runtime_account_name
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  access_tier              = "Hot"

  # Deliberately flat: Functions host storage (see the note at the top of this file).
  is_hns_enabled                    = false
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = var.public_network_access_enabled

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "deployment" {
  #checkov:skip=CKV2_AZURE_21:Read requests are logged by the blobServices/default diagnostic setting (StorageRead, monitoring module); the check wants azurerm_log_analytics_storage_insights, which needs an account key.
  name                  = var.deployment_container_name
  storage_account_id    = azurerm_storage_account.runtime.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "dead_letter" {
  #checkov:skip=CKV2_AZURE_21:Read requests are logged by the blobServices/default diagnostic setting (StorageRead, monitoring module); the check wants azurerm_log_analytics_storage_insights, which needs an account key.
  name                  = var.dead_letter_container_name
  storage_account_id    = azurerm_storage_account.runtime.id
  container_access_type = "private"
}
