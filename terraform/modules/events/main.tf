# Storage raises BlobCreated on the data account; this subscription delivers each event to the
# `transform` function, an eventGridTrigger, which runs while Event Grid waits for the answer.
# A failed invocation (the handler's 500 or 503) is retried on Event Grid's schedule
# (retry_policy); what still fails, and what cannot be delivered, lands in the dead-letter
# container.

resource "azurerm_eventgrid_system_topic" "raw" {
  name                = var.system_topic_name
  resource_group_name = var.resource_group_name
  location            = var.location
  source_resource_id  = var.source_storage_account_id
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = var.tags

  # Used only to write dead letters (the storage accounts accept no keys).
  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "dead_letter_writer" {
  scope                = var.dead_letter_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.raw.identity[0].principal_id
  principal_type       = "ServicePrincipal"
  description          = "Event Grid writes undeliverable BlobCreated events here."
}

resource "azurerm_eventgrid_system_topic_event_subscription" "raw_blob_created" {
  name                  = var.subscription_name
  system_topic          = azurerm_eventgrid_system_topic.raw.name
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types  = ["Microsoft.Storage.BlobCreated"]

  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${var.container_name}/blobs/"
    subject_ends_with   = var.subject_ends_with
    case_sensitive      = true
  }

  advanced_filter {
    string_in {
      key    = "data.api"
      values = var.included_apis
    }
  }

  # One event per request: the Event Grid extension runs every event of a request at once and
  # answers 500 for the whole batch if one fails, so batches would be redelivered whole.
  dynamic "azure_function_endpoint" {
    for_each = var.function_id == null ? [] : [var.function_id]
    content {
      function_id                       = azure_function_endpoint.value
      max_events_per_batch              = 1
      preferred_batch_size_in_kilobytes = 64
    }
  }

  # Only non-sensitive values decide which endpoint block exists (for_each refuses sensitive ones).
  dynamic "webhook_endpoint" {
    for_each = var.function_id == null ? ["eventgrid_extension"] : []
    content {
      url                               = var.webhook_url
      max_events_per_batch              = 1
      preferred_batch_size_in_kilobytes = 64
    }
  }

  retry_policy {
    max_delivery_attempts = var.max_delivery_attempts
    event_time_to_live    = var.event_time_to_live_minutes
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = var.dead_letter_storage_account_id
    storage_blob_container_name = var.dead_letter_container_name
  }

  lifecycle {
    precondition {
      condition     = var.function_id != null || var.webhook_url != null
      error_message = "Set function_id (the function's resource id) or webhook_url (its eventgrid webhook with the eventgrid_extension key)."
    }
  }

  depends_on = [azurerm_role_assignment.dead_letter_writer]
}
