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
  # There is deliberately no plain "AzureWebJobsStorage" key, not even an empty one: the host
  # treats an empty or key-less value as the connection and fails (Azure/azure-functions-host
  # #11796, #11636). The one azurerm injects is removed by azapi_resource_action.app_settings below.
  host_storage_settings = {
    "AzureWebJobsStorage__accountName" = var.runtime_account_name
    "AzureWebJobsStorage__credential"  = "managedidentity"
    "AzureWebJobsStorage__clientId"    = var.identity_client_id
  }

  # Read by the transformer binary itself (object_store picks the managed identity via
  # IDENTITY_ENDPOINT; AZURE_CLIENT_ID selects the user-assigned one). The handler also takes the
  # raw container that events must name from RAW_URL.
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

  # Transforms at once per instance. transform/function.json is an Event Grid trigger, which has
  # no host.json concurrency setting (the extension runs every delivered event at once), so the
  # handler bounds itself: at most WATCH_CONCURRENCY transforms, later invocations wait up to 10 s
  # for a slot, then answer 503 and Event Grid delivers again (docs/DESIGN.md, "Serve"). Sized so
  # the worst case fits the instance: 256 MB for the host and the handler's baseline + cap x
  # 300 MB per transform (streaming, whatever the blob size; the host no longer holds the blob).
  # 2048 MB: 256 + 5 x 300 = 1756; 4096 MB: 256 + 11 x 300 = 3556. The structural rule
  # transform-concurrency (tests/structure.py) recomputes these sums.
  transform_concurrency = {
    "2048" = 5
    "4096" = 11
  }

  concurrency_settings = {
    "WATCH_CONCURRENCY" = tostring(local.transform_concurrency[var.instance_memory_in_mb])
  }

  # What `standard` holds (STANDARD_FORMAT). In delta mode each `transform` invocation only
  # stages its data files and a manifest under _delta_staging/; the timer function `commit`
  # (transformer/function/commit/function.json, NCRONTAB "*/5 * * * * *") runs one commit
  # round per tick, so a row is visible at most one tick after its blob was transformed.
  # DELTA_COMMIT_INTERVAL_MS is that same bound for the handler's own committers (POST /runs
  # replays); the structural rule delta-commit checks that it equals the timer's period.
  delta_commit_interval_ms = 5000

  lakehouse_settings = {
    "STANDARD_FORMAT"          = var.standard_format
    "DELTA_COMMIT_INTERVAL_MS" = tostring(local.delta_commit_interval_ms)
  }

  # Delta table upkeep (delta mode; parquet mode answers 200 and does nothing), run by two more
  # timer functions of the package: `compact` (NCRONTAB "0 15 * * * *", hourly at :15) POSTs
  # /compact, which rewrites the small files of closed partitions into files of about
  # COMPACT_TARGET_MB MiB, one commit per partition; `vacuum` ("0 45 3 * * *", daily at 03:45
  # UTC) POSTs /vacuum, which deletes data files removed from the Delta log more than
  # VACUUM_RETENTION_HOURS ago, and orphans. COMPACT_INTERVAL_MS and VACUUM_INTERVAL_MS are not
  # set: only `transformer watch` reads them; here the schedules live in the function.json files.
  #
  # Compaction rewrites one group of about the target at a time, entirely in memory: the group's
  # Parquet bytes (1 x target), its decoded Arrow batches, concatenated and then sorted into a
  # second copy (2 x the decoded size, assumed ~5 x target for zstd-compressed log rows), and
  # the encoded output (1 x target): ~12 x target at peak (an estimate, not measured). A commit
  # round that drops a replayed blob from a compacted file rewrites one such file the same way.
  # Each of these timer functions scales on instances of its own (Flex per-function scaling), so
  # the budget is the instance minus the 256 MB host reserve: 2048 MB: 256 + 12 x 64 = 1024;
  # 4096 MB: 256 + 12 x 128 = 1792, headroom left for a poorer compression ratio. The
  # transformer's own default, 128, would take 1792 of 2048 MB. The structural rule
  # delta-maintenance (tests/structure.py) recomputes these sums.
  compact_target_mb = {
    "2048" = 64
    "4096" = 128
  }

  maintenance_settings = {
    "COMPACT_TARGET_MB"      = tostring(local.compact_target_mb[var.instance_memory_in_mb])
    "VACUUM_RETENTION_HOURS" = tostring(var.vacuum_retention_hours)
  }

  app_settings = merge(
    local.host_storage_settings,
    local.transformer_settings,
    local.telemetry_settings,
    local.concurrency_settings,
    local.lakehouse_settings,
    local.maintenance_settings,
    var.extra_app_settings,
  )

  # What the app must end up with: the module's settings plus the one azurerm derives from
  # site_config (its Read moves APPLICATIONINSIGHTS_CONNECTION_STRING back into site_config, so
  # the provider sees no drift once this set is in place).
  effective_app_settings = merge(local.app_settings, {
    "APPLICATIONINSIGHTS_CONNECTION_STRING" = var.application_insights_connection_string
  })
}

resource "azurerm_function_app_flex_consumption" "this" {
  #checkov:skip=CKV_AZURE_17:Client certificates cannot be presented by Event Grid, which delivers to the eventGridTrigger function.
  #checkov:skip=CKV_AZURE_56:No App Service authentication: the only inbound call is Event Grid to the system-key protected eventgrid extension webhook.
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

# Identity-only host storage. azurerm writes a key-less "AzureWebJobsStorage=...;AccountKey=;..."
# app setting on every create and update of a Flex Consumption app, whatever
# storage_authentication_type says, and hides it from state on read (so it never shows as drift):
# hashicorp/terraform-provider-azurerm#29693, #29149, #33211 (source: function_app_flex_consumption
# _resource.go, Create/Update call ExpandSiteConfigFunctionFlexConsumptionApp with the key-less
# string; unpackFunctionAppFlexConsumptionSettings drops it on Read). The Functions host then
# prefers that broken string over the AzureWebJobsStorage__* identity settings.
#
# After every create or update of the app (replace_triggered_by), PUT the complete app settings
# without it: "Web Apps - Update Application Settings" replaces the whole set, so the key is
# gone, and a later `az ... appsettings delete` is never needed. A PUT through
# azapi_resource_action rather than azapi_update_resource, because the latter merges the body
# into what it reads back (utils.MergeObject), which cannot drop a key.
resource "azapi_resource_action" "app_settings" {
  type        = "Microsoft.Web/sites/config@2024-04-01"
  resource_id = "${azurerm_function_app_flex_consumption.this.id}/config/appsettings"
  method      = "PUT"

  body = {
    properties = local.effective_app_settings
  }

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.this]
  }
}

# The eventgrid_extension system key only exists after the package is deployed and the host has
# loaded the Event Grid trigger, so this read is opt-in (blob_webhook_enabled); see
# terraform/README.md, step 6. Not needed when the subscription delivers to function_id
# (Event Grid then fetches the key itself).
data "azurerm_function_app_host_keys" "this" {
  count               = var.blob_webhook_enabled ? 1 : 0
  name                = azurerm_function_app_flex_consumption.this.name
  resource_group_name = var.resource_group_name

  depends_on = [azapi_resource_action.app_settings]
}

locals {
  # Learn: azure-functions/event-grid-how-tos, "Create a subscription" (v2.x+ URL, system key
  # eventgrid_extension).
  event_grid_webhook_url = var.blob_webhook_enabled ? format(
    "https://%s/runtime/webhooks/eventgrid?functionName=%s&code=%s",
    azurerm_function_app_flex_consumption.this.default_hostname,
    var.function_name,
    data.azurerm_function_app_host_keys.this[0].event_grid_extension_key,
  ) : null
}
