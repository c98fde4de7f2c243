locals {
  keda_sasl = {
    "PLAIN"         = "plaintext"
    "SCRAM-SHA-256" = "scram_sha256"
    "SCRAM-SHA-512" = "scram_sha512"
  }

  kafka_scale_metadata = merge(
    {
      bootstrapServers = var.kafka_brokers
      consumerGroup    = var.kafka_group_id
      lagThreshold     = tostring(var.lag_threshold)
      sasl             = local.keda_sasl[var.kafka_sasl_mechanism]
      tls              = "enable"
    },
    length(var.kafka_topics) == 1 ? { topic = var.kafka_topics[0] } : {},
  )

  secret_names = merge(
    {
      kafka_sasl_username = "kafka-sasl-username"
      kafka_sasl_password = "kafka-sasl-password"
    },
    var.redis_enabled ? { redis_url = "redis-url" } : {},
  )

  # Metrics export to Application Insights (service/src/appinsights.rs), in both modes. Known at
  # plan time even while the connection string and the client id are not (the object is), and
  # not sensitive although the connection string is: only whether the export is on.
  #
  # The connection string goes in as a Container Apps secret (secret_name), not as plain env.
  # With local auth off it is no credential (ingestion takes the identity's Entra ID token), but
  # Terraform marks it sensitive and a secret keeps it out of the revision template, i.e. out of
  # `az containerapp show` and the portal; it needs no Key Vault (nothing to rotate or protect).
  # A changed secret value reaches the app's running replicas only when they restart (the job's
  # next execution has it); the value changes only if Application Insights is recreated.
  # The authentication string names an identity and nothing more: plain env.
  telemetry_enabled = nonsensitive(var.application_insights != null)
  telemetry_secret  = "appinsights-connection-string"
  telemetry_env = local.telemetry_enabled ? {
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${var.application_insights.client_id};Authorization=AAD"
  } : {}
  app_env = merge(var.env, local.telemetry_env)

  # Scheduled mode: one pass of the worker per execution (docs/DESIGN.md, "Single pass"). Merged
  # last over var.env, so nothing there can turn the job back into a daemon.
  pass_env = {
    BATCH_CONTINUOUS = "false"
  }
  pass_limits = var.pass_max_seconds == null ? {} : { PASS_MAX_SECONDS = tostring(var.pass_max_seconds) }
  job_env     = merge(var.env, local.telemetry_env, local.pass_limits, local.pass_env)
  job_name    = coalesce(var.job_name, var.container_app_name)
}

# --- Key Vault: RBAC only, the worker identity reads exactly its secrets -----------------------

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:Container Apps on the Consumption profile resolve Key Vault references over the public endpoint; access is RBAC-only.
  #checkov:skip=CKV_AZURE_189:Public endpoint kept for the same reason; add a private endpoint with a VNet-integrated environment to close it.
  #checkov:skip=CKV2_AZURE_32:No private endpoint in the default deployment (cost and VNet).
  name                          = var.key_vault_name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  tenant_id                     = var.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 7
  public_network_access_enabled = true
  tags                          = var.tags

  network_acls {
    default_action = "Allow"
    bypass         = "AzureServices"
  }
}

resource "azurerm_role_assignment" "deployer_secrets_officer" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = var.deployer_principal_id
  description          = "Lets terraform apply write the worker's secrets."
}

# Write-only values (Terraform >= 1.11): the secrets never enter the plan or the state.
resource "azurerm_key_vault_secret" "kafka_sasl_username" {
  #checkov:skip=CKV_AZURE_41:The Kafka provider owns rotation; an expiry date here would silently stop the worker.
  name             = local.secret_names.kafka_sasl_username
  key_vault_id     = azurerm_key_vault.this.id
  value_wo         = var.kafka_sasl_username
  value_wo_version = var.secret_version
  content_type     = "text/plain"
  depends_on       = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "kafka_sasl_password" {
  #checkov:skip=CKV_AZURE_41:The Kafka provider owns rotation; an expiry date here would silently stop the worker.
  name             = local.secret_names.kafka_sasl_password
  key_vault_id     = azurerm_key_vault.this.id
  value_wo         = var.kafka_sasl_password
  value_wo_version = var.secret_version
  content_type     = "text/plain"
  depends_on       = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "redis_url" {
  #checkov:skip=CKV_AZURE_41:Redis credentials are rotated with the Redis instance, not on a fixed expiry.
  count            = var.redis_enabled ? 1 : 0
  name             = "redis-url"
  key_vault_id     = azurerm_key_vault.this.id
  value_wo         = var.redis_url
  value_wo_version = var.secret_version
  content_type     = "text/uri-list"
  depends_on       = [azurerm_role_assignment.deployer_secrets_officer]
}

locals {
  secret_resource_ids = merge(
    {
      kafka_sasl_username = azurerm_key_vault_secret.kafka_sasl_username.versionless_id
      kafka_sasl_password = azurerm_key_vault_secret.kafka_sasl_password.versionless_id
    },
    var.redis_enabled ? { redis_url = azurerm_key_vault_secret.redis_url[0].versionless_id } : {},
  )
}

# Secret-scoped RBAC: the worker can read these secrets and nothing else in the vault.
resource "azurerm_role_assignment" "worker_secret_reader" {
  for_each             = local.secret_names
  scope                = "${azurerm_key_vault.this.id}/secrets/${each.value}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.identity_principal_id
  principal_type       = "ServicePrincipal"
  description          = "Worker reads ${each.value} through a Container Apps Key Vault reference."

  depends_on = [
    azurerm_key_vault_secret.kafka_sasl_username,
    azurerm_key_vault_secret.kafka_sasl_password,
    azurerm_key_vault_secret.redis_url,
  ]
}

resource "azurerm_role_assignment" "acr_pull" {
  count                = var.registry_id == null ? 0 : 1
  scope                = var.registry_id
  role_definition_name = "AcrPull"
  principal_id         = var.identity_principal_id
  principal_type       = "ServicePrincipal"
  description          = "Worker pulls its image with its own identity (no registry password)."
}

# --- Container Apps ------------------------------------------------------------------------------

resource "azurerm_container_app_environment" "this" {
  name                       = var.container_app_environment_name
  resource_group_name        = var.resource_group_name
  location                   = var.location
  logs_destination           = "log-analytics"
  log_analytics_workspace_id = var.log_analytics_workspace_id
  tags                       = var.tags
}

# Daemon mode: the always-on consumer, scaled on consumer-group lag.
resource "azurerm_container_app" "worker" {
  count                        = var.mode == "daemon" ? 1 : 0
  name                         = var.container_app_name
  resource_group_name          = var.resource_group_name
  container_app_environment_id = azurerm_container_app_environment.this.id
  revision_mode                = "Single"
  tags                         = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [var.identity_id]
  }

  dynamic "registry" {
    for_each = var.registry_server == null ? [] : [var.registry_server]
    content {
      server   = registry.value
      identity = var.identity_id
    }
  }

  dynamic "secret" {
    for_each = local.secret_names
    content {
      name                = secret.value
      key_vault_secret_id = local.secret_resource_ids[secret.key]
      identity            = var.identity_id
    }
  }

  dynamic "secret" {
    for_each = local.telemetry_enabled ? [local.telemetry_secret] : []
    content {
      name  = secret.value
      value = var.application_insights.connection_string
    }
  }

  template {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    container {
      name   = "worker"
      image  = var.image
      cpu    = var.cpu
      memory = var.memory

      dynamic "env" {
        for_each = local.app_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "KAFKA_SASL_USERNAME"
        secret_name = local.secret_names.kafka_sasl_username
      }

      env {
        name        = "KAFKA_SASL_PASSWORD"
        secret_name = local.secret_names.kafka_sasl_password
      }

      dynamic "env" {
        for_each = local.telemetry_enabled ? [local.telemetry_secret] : []
        content {
          name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
          secret_name = env.value
        }
      }

      dynamic "env" {
        for_each = var.redis_enabled ? [local.secret_names.redis_url] : []
        content {
          name        = "REDIS_URL"
          secret_name = env.value
        }
      }

      liveness_probe {
        transport = "HTTP"
        port      = var.metrics_port
        path      = "/healthz"
      }

      readiness_probe {
        transport = "HTTP"
        port      = var.metrics_port
        path      = "/readyz"
      }
    }

    custom_scale_rule {
      name             = "kafka-consumer-lag"
      custom_rule_type = "kafka"
      metadata         = local.kafka_scale_metadata

      authentication {
        secret_name       = local.secret_names.kafka_sasl_username
        trigger_parameter = "username"
      }

      authentication {
        secret_name       = local.secret_names.kafka_sasl_password
        trigger_parameter = "password"
      }
    }
  }

  depends_on = [
    azurerm_role_assignment.worker_secret_reader,
    azurerm_role_assignment.acr_pull,
  ]
}

# The app had no count before the scheduled mode existed: keep existing deployments in place.
moved {
  from = azurerm_container_app.worker
  to   = azurerm_container_app.worker[0]
}

# Scheduled mode: a Container Apps Job whose every execution is one pass (BATCH_CONTINUOUS=false):
# it joins the group, lands every assigned partition up to the high watermark it saw, commits and
# exits (0 done, 1 landing or commit failed, 3 nothing assigned, 4 interrupted). Same identity,
# Key Vault secrets, registry and environment as the daemon app; no scale rule and no probes (a
# pass ends by itself; replica_timeout_in_seconds bounds it). One replica per execution: a second
# one in the same group would only split the partitions.
resource "azurerm_container_app_job" "worker" {
  count                        = var.mode == "scheduled" ? 1 : 0
  name                         = local.job_name
  resource_group_name          = var.resource_group_name
  location                     = var.location
  container_app_environment_id = azurerm_container_app_environment.this.id
  replica_timeout_in_seconds   = var.job_replica_timeout_seconds
  replica_retry_limit          = var.job_retry_limit
  tags                         = var.tags

  schedule_trigger_config {
    cron_expression          = var.schedule_cron
    parallelism              = 1
    replica_completion_count = 1
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [var.identity_id]
  }

  dynamic "registry" {
    for_each = var.registry_server == null ? [] : [var.registry_server]
    content {
      server   = registry.value
      identity = var.identity_id
    }
  }

  dynamic "secret" {
    for_each = local.secret_names
    content {
      name                = secret.value
      key_vault_secret_id = local.secret_resource_ids[secret.key]
      identity            = var.identity_id
    }
  }

  dynamic "secret" {
    for_each = local.telemetry_enabled ? [local.telemetry_secret] : []
    content {
      name  = secret.value
      value = var.application_insights.connection_string
    }
  }

  template {
    container {
      name   = "worker"
      image  = var.image
      cpu    = var.cpu
      memory = var.memory

      dynamic "env" {
        for_each = local.job_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "KAFKA_SASL_USERNAME"
        secret_name = local.secret_names.kafka_sasl_username
      }

      env {
        name        = "KAFKA_SASL_PASSWORD"
        secret_name = local.secret_names.kafka_sasl_password
      }

      dynamic "env" {
        for_each = local.telemetry_enabled ? [local.telemetry_secret] : []
        content {
          name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
          secret_name = env.value
        }
      }

      dynamic "env" {
        for_each = var.redis_enabled ? [local.secret_names.redis_url] : []
        content {
          name        = "REDIS_URL"
          secret_name = env.value
        }
      }
    }
  }

  depends_on = [
    azurerm_role_assignment.worker_secret_reader,
    azurerm_role_assignment.acr_pull,
  ]
}
