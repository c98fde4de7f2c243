resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:Flex Consumption (FC1) scales from zero per event; a minimum instance count would only add idle cost (use always_ready if latency matters).
  #checkov:skip=CKV_AZURE_225:FC1 plans have no zone_balancing_enabled setting; Flex Consumption zone redundancy is a platform option per region.
  name                = var.service_plan_name
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = var.sku_name
  tags                = var.tags
}

locals {
  # Identity-based connections only. Names follow the Functions "<prefix>__<property>" convention.
  host_storage_settings = {
    # The provider injects a key-less "AzureWebJobsStorage=...AccountKey=;..." string even when
    # storage_authentication_type is an identity (hashicorp/terraform-provider-azurerm#29693);
    # user app settings win, and an empty value lets the host use the __accountName form below.
    "AzureWebJobsStorage"              = ""
    "AzureWebJobsStorage__accountName" = var.runtime_account_name
    "AzureWebJobsStorage__credential"  = "managedidentity"
    "AzureWebJobsStorage__clientId"    = var.identity_client_id
  }

  # Connection named in transform/function.json ("connection": "RawStorage"). The blob trigger
  # needs both service URIs: blobs to read, the queue for its poison messages.
  raw_trigger_settings = {
    "RawStorage__blobServiceUri"  = var.data_blob_endpoint
    "RawStorage__queueServiceUri" = var.data_queue_endpoint
    "RawStorage__credential"      = "managedidentity"
    "RawStorage__clientId"        = var.identity_client_id
  }

  # Read by the transformer binary itself (object_store picks the managed identity via
  # IDENTITY_ENDPOINT; AZURE_CLIENT_ID selects the user-assigned one).
  transformer_settings = {
    "RAW_URL"                    = "az://${var.raw_container_name}"
    "STANDARD_URL"               = "az://${var.standard_container_name}"
    "AZURE_STORAGE_ACCOUNT_NAME" = var.data_account_name
    "AZURE_CLIENT_ID"            = var.identity_client_id
    "PARQUET_COMPRESSION"        = var.parquet_compression
    "LOG_FORMAT"                 = var.log_format
    "RUST_LOG"                   = var.rust_log
    # Only FUNCTIONS_CUSTOMHANDLER_PORT is reachable on Functions; keep metrics on loopback.
    "METRICS_ADDR" = "127.0.0.1:9464"
  }

  telemetry_settings = {
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" = "ClientId=${var.identity_client_id};Authorization=AAD"
  }

  app_settings = merge(
    local.host_storage_settings,
    local.raw_trigger_settings,
    local.transformer_settings,
    local.telemetry_settings,
    var.extra_app_settings,
  )
}

resource "azurerm_function_app_flex_consumption" "this" {
  #checkov:skip=CKV_AZURE_17:Client certificates cannot be presented by the Event Grid webhook that drives the blob trigger.
  #checkov:skip=CKV_AZURE_56:No App Service authentication: the only inbound call is Event Grid to the system-key protected blobs extension webhook.
  #checkov:skip=CKV_AZURE_221:Public network access is how Event Grid reaches the webhook; put the app behind a VNet and private endpoint to close it.
  name                = var.function_app_name
  resource_group_name = var.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.this.id

  runtime_name           = var.runtime_name
  runtime_version        = var.runtime_version
  instance_memory_in_mb  = var.instance_memory_in_mb
  maximum_instance_count = var.maximum_instance_count

  # Deployment package (zip from scripts/package-function) lives in the runtime account and is
  # pulled with the transformer identity: no connection string, no key.
  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${var.runtime_blob_endpoint}${var.deployment_container_name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = var.identity_id

  https_only                                     = true
  public_network_access_enabled                  = true
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [var.identity_id]
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    http2_enabled                          = true
  }

  app_settings = local.app_settings
  tags         = var.tags
}

# The blobs extension key only exists after the package is deployed and the host has started,
# so this read is opt-in (blob_webhook_enabled); see terraform/README.md, step 6.
data "azurerm_function_app_host_keys" "this" {
  count               = var.blob_webhook_enabled ? 1 : 0
  name                = azurerm_function_app_flex_consumption.this.name
  resource_group_name = var.resource_group_name
}
