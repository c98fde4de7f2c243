locals {
  env_letter = substr(var.environment, 0, 1)
  base       = "${var.project}-${var.environment}"
  dash_sfx   = var.suffix == "" ? "" : "-${var.suffix}"

  # Azure naming rules this module guarantees (checked by tests/naming.tftest.hcl):
  #   storage account: 3-24 chars, lowercase letters and digits, globally unique
  #   function app:    <= 32 chars so the Functions host id (first 32 chars) cannot collide
  #   key vault:       3-24 chars, letters, digits and hyphens, globally unique
  #   container app:   <= 32 chars, lowercase letters, digits and hyphens (the job too)
  names = {
    resource_group            = "rg-${local.base}"
    data_storage_account      = "st${var.project}${local.env_letter}dl${var.suffix}"
    runtime_storage_account   = "st${var.project}${local.env_letter}fn${var.suffix}"
    worker_identity           = "id-${local.base}-worker"
    transformer_identity      = "id-${local.base}-transformer"
    service_plan              = "asp-${local.base}-transformer"
    function_app              = "func-${local.base}${local.dash_sfx}"
    log_analytics_workspace   = "log-${local.base}"
    application_insights      = "appi-${local.base}"
    eventgrid_system_topic    = "evgt-${local.base}-raw"
    eventgrid_subscription    = "evgs-${local.base}-raw-to-transform"
    container_app_environment = "cae-${local.base}"
    container_app             = "ca-${local.base}-worker"
    container_app_job         = "caj-${local.base}-worker"
    key_vault                 = "kv-${var.project}-${local.env_letter}${local.dash_sfx}"
  }

  tags = merge(
    {
      project     = var.project
      environment = var.environment
      managed-by  = "terraform"
    },
    var.tags,
  )
}
