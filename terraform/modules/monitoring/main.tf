# Entra-only: no workspace shared keys (agents and queries authenticate with Entra ID; diagnostic
# settings and workspace-based Application Insights do not use the keys). The 5.x name of the
# flag (4.x had the negative local_authentication_disabled).
resource "azurerm_log_analytics_workspace" "this" {
  name                         = var.log_analytics_workspace_name
  resource_group_name          = var.resource_group_name
  location                     = var.location
  sku                          = "PerGB2018"
  retention_in_days            = var.retention_in_days
  daily_quota_gb               = var.daily_quota_gb
  local_authentication_enabled = false
  tags                         = var.tags
}

# Workspace-based, Entra-only ingestion: the worker and the transformer authenticate with their
# managed identities (APPLICATIONINSIGHTS_AUTHENTICATION_STRING + Monitoring Metrics Publisher), so
# the connection string alone cannot be used to write telemetry.
resource "azurerm_application_insights" "this" {
  name                         = var.application_insights_name
  resource_group_name          = var.resource_group_name
  location                     = var.location
  workspace_id                 = azurerm_log_analytics_workspace.this.id
  application_type             = "other"
  local_authentication_enabled = false
  retention_in_days            = var.retention_in_days
  tags                         = var.tags
}

resource "azurerm_monitor_diagnostic_setting" "this" {
  for_each                   = var.diagnostic_targets
  name                       = "to-${var.log_analytics_workspace_name}"
  target_resource_id         = each.value.resource_id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  dynamic "enabled_log" {
    for_each = each.value.logs ? ["allLogs"] : []
    content {
      category_group = enabled_log.value
    }
  }

  dynamic "enabled_metric" {
    for_each = each.value.metrics ? ["AllMetrics"] : []
    content {
      category = enabled_metric.value
    }
  }
}

# --- Alerts -------------------------------------------------------------------------------------
#
# Four alerts (README.md, "Alerts"). The log search alerts query the Application Insights
# resource above: `customMetrics` holds every Prometheus series of the worker and the
# transformer (the services' exporter pushes them with Entra ID: name = the series name,
# counters as the increase since the previous export every 60 s, gauges as the current value,
# labels in customDimensions, cloud_RoleName "worker" or "transformer"), `requests` the Functions
# host's invocations. Dead letters are an Event Grid platform metric, so that one is a metric
# alert on the system topic. Nothing here has been applied against Azure.

locals {
  action_group_ids = [for ag in azurerm_monitor_action_group.alerts : ag.id]

  # 0 Critical, 1 Error, 2 Warning. Data given up on is an error; failures that are retried and
  # a backlog are warnings until they persist.
  alert_severity = {
    poison_blobs         = 1
    eventgrid_deadletter = 1
    function_failures    = 2
    consumer_lag         = 2
  }

  # Blobs given up on: poison entries (the handler or watcher will not retry the blob) and Delta
  # quarantines (delta-rs refused a blob's files, its manifest set aside in _delta_quarantine/).
  # Counters arrive as increases, so the sum over the window is what happened in it.
  poison_query = <<-KQL
    customMetrics
    | where name in ("transformer_poison_total", "transformer_delta_quarantined_total")
    | summarize given_up = sum(valueSum) by metric = name
  KQL

  # Every failed invocation of the Function App's functions (transform, commit, compact,
  # vacuum): the Functions host writes one `requests` row per invocation. Flex Consumption has no
  # platform metric for failures (OnDemandFunctionExecutionCount has no success dimension).
  function_failures_query = <<-KQL
    requests
    | where success == false
    | summarize failures = count() by function_name = operation_Name
  KQL

  # Group lag, sustained: worker_consumer_lag is a gauge per worker process, topic and partition
  # (0 on a worker once the partition moved away), so the group's lag in a 5-minute slot is the
  # sum of each series' latest value in it. The query splits the 15-minute window into three
  # slots anchored at now and yields the lowest of the three sums, only when all three have data:
  # the alert fires when the lag stayed above the threshold for 15 minutes. (A log alert whose
  # query projects no timestamp evaluates one period, so the 15 minutes live in the query.)
  consumer_lag_query = <<-KQL
    customMetrics
    | where timestamp > ago(15m) and timestamp < now()
    | where name == "worker_consumer_lag"
    | extend consumer_lag = todouble(valueSum) / max_of(valueCount, 1),
        topic = tostring(customDimensions["topic"]),
        kafka_partition = tostring(customDimensions["partition"])
    | summarize arg_max(timestamp, consumer_lag)
        by cloud_RoleInstance, topic, kafka_partition, slot = bin_at(timestamp, 5m, ago(15m))
    | summarize group_lag = sum(consumer_lag) by slot
    | summarize lowest_group_lag = min(group_lag), slots = count()
    | where slots == 3
  KQL
}

# Email receivers for every alert below; none (and no action group) without alert_emails, the
# alerts then only show in the portal and the Azure Monitor alerts API.
resource "azurerm_monitor_action_group" "alerts" {
  count               = length(var.alert_emails) > 0 ? 1 : 0
  name                = "${var.application_insights_name}-alerts"
  resource_group_name = var.resource_group_name
  short_name          = "dataflow"
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = var.alert_emails
    content {
      name                    = "email-${email_receiver.key}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "poison_blobs" {
  name                 = "${var.application_insights_name}-poison-blobs"
  display_name         = "Transformer gave up on a raw blob (poison or Delta quarantine)"
  description          = "transformer_poison_total or transformer_delta_quarantined_total rose in the last 15 minutes: a raw blob was given up on. Poison entries are in standard/_poison/, quarantined manifests in standard/_delta_quarantine/; the transformer's logs (event blob_poisoned / delta_quarantined) say why."
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [azurerm_application_insights.this.id]
  severity             = local.alert_severity.poison_blobs
  evaluation_frequency = "PT5M"
  window_duration      = "PT15M"
  # Stateful: one notification per occurrence, resolved once the window holds no new entry.
  auto_mitigation_enabled = true
  tags                    = var.tags

  criteria {
    query                   = local.poison_query
    time_aggregation_method = "Total"
    metric_measure_column   = "given_up"
    operator                = "GreaterThan"
    threshold               = 0

    dimension {
      name     = "metric"
      operator = "Include"
      values   = ["*"]
    }
  }

  dynamic "action" {
    for_each = length(local.action_group_ids) > 0 ? [local.action_group_ids] : []
    content {
      action_groups = action.value
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "function_failures" {
  name                    = "${var.application_insights_name}-function-failures"
  display_name            = "Function App invocations failed"
  description             = "More than function_failure_threshold failed invocations of a function (transform, commit, compact, vacuum) in the last 15 minutes. transform failures are redelivered by Event Grid (a busy instance's 503 counts too); timer failures wait for the next tick. Details: requests and FunctionAppLogs."
  resource_group_name     = var.resource_group_name
  location                = var.location
  scopes                  = [azurerm_application_insights.this.id]
  severity                = local.alert_severity.function_failures
  evaluation_frequency    = "PT5M"
  window_duration         = "PT15M"
  auto_mitigation_enabled = true
  tags                    = var.tags

  criteria {
    query                   = local.function_failures_query
    time_aggregation_method = "Total"
    metric_measure_column   = "failures"
    operator                = "GreaterThan"
    threshold               = var.function_failure_threshold

    dimension {
      name     = "function_name"
      operator = "Include"
      values   = ["*"]
    }
  }

  dynamic "action" {
    for_each = length(local.action_group_ids) > 0 ? [local.action_group_ids] : []
    content {
      action_groups = action.value
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "consumer_lag" {
  name                    = "${var.application_insights_name}-consumer-lag"
  display_name            = "Kafka consumer group lag stays high"
  description             = "The worker group's lag (sum of worker_consumer_lag over workers, topics and partitions) stayed above consumer_lag_threshold in each 5-minute slot of the last 15 minutes: the workers do not keep up, or cannot land (see worker_errors_total, worker_fetch_paused)."
  resource_group_name     = var.resource_group_name
  location                = var.location
  scopes                  = [azurerm_application_insights.this.id]
  severity                = local.alert_severity.consumer_lag
  evaluation_frequency    = "PT5M"
  window_duration         = "PT15M"
  auto_mitigation_enabled = true
  tags                    = var.tags

  criteria {
    query                   = local.consumer_lag_query
    time_aggregation_method = "Minimum"
    metric_measure_column   = "lowest_group_lag"
    operator                = "GreaterThan"
    threshold               = var.consumer_lag_threshold
  }

  dynamic "action" {
    for_each = length(local.action_group_ids) > 0 ? [local.action_group_ids] : []
    content {
      action_groups = action.value
    }
  }
}

# Event Grid dead-lettered a BlobCreated event: its retries are exhausted (or it could not be
# delivered at all), so that raw blob is not transformed until someone replays it.
resource "azurerm_monitor_metric_alert" "eventgrid_deadletter" {
  count               = var.eventgrid_system_topic == null ? 0 : 1
  name                = "${var.application_insights_name}-eventgrid-deadletter"
  description         = "Event Grid dead-lettered BlobCreated events in the last 15 minutes: those raw blobs were not transformed. The events are in the runtime account's eventgrid-deadletter container; replay them (modules/events/README.md)."
  resource_group_name = var.resource_group_name
  scopes              = [var.eventgrid_system_topic.id]
  severity            = local.alert_severity.eventgrid_deadletter
  frequency           = "PT5M"
  window_size         = "PT15M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.EventGrid/systemTopics"
    metric_name      = "DeadLetteredCount"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 0
  }

  dynamic "action" {
    for_each = local.action_group_ids
    content {
      action_group_id = action.value
    }
  }
}
