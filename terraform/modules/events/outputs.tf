output "system_topic_id" {
  description = "Resource id of the system topic (diagnostic settings target: delivery failures)."
  value       = azurerm_eventgrid_system_topic.raw.id
}

output "system_topic_name" {
  description = "Name of the system topic."
  value       = azurerm_eventgrid_system_topic.raw.name
}

output "subscription_id" {
  description = "Resource id of the event subscription."
  value       = azurerm_eventgrid_system_topic_event_subscription.raw_blob_created.id
}

output "topic_principal_id" {
  description = "Object id of the topic's system-assigned identity."
  value       = azurerm_eventgrid_system_topic.raw.identity[0].principal_id
}
