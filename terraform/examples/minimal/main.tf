# Smallest useful deployment as its own root configuration: storage, identities, monitoring and
# the transformer Function App, from the repository's root module. The worker runs outside Azure
# (laptop or VM) with the env file written from the `azure_env` output. Values: terraform.tfvars
# next to this file (loaded automatically); README.md has the commands.
#
# The source is a relative path because the modules are not published to a registry.

module "dataflow" {
  source = "../.."

  subscription_id = var.subscription_id
  location        = var.location
  project         = var.project
  environment     = var.environment
  name_suffix     = var.name_suffix

  data_replication_type           = var.data_replication_type
  raw_retention_days              = var.raw_retention_days
  function_maximum_instance_count = var.function_maximum_instance_count
  log_daily_quota_gb              = var.log_daily_quota_gb

  kafka_brokers           = var.kafka_brokers
  kafka_topics            = var.kafka_topics
  kafka_security_protocol = var.kafka_security_protocol

  enable_blob_trigger_subscription = var.enable_blob_trigger_subscription
}
