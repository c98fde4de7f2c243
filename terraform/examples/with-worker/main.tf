# The full pipeline on Azure as its own root configuration: everything from `minimal` plus
# modules/worker_app (Container Apps environment, the worker with its user-assigned identity, a
# Key Vault holding the Kafka SASL credentials as write-only secrets; as a container app with a
# KEDA Kafka-lag scale rule, or with worker_mode = "scheduled" as a Container Apps Job running one
# pass on a cron schedule). Values: terraform.tfvars next to this file; the Kafka credentials come
# from TF_VAR_kafka_sasl_username / TF_VAR_kafka_sasl_password (README.md).

module "dataflow" {
  source = "../.."

  subscription_id = var.subscription_id
  location        = var.location
  project         = var.project
  environment     = var.environment
  name_suffix     = var.name_suffix

  data_replication_type = var.data_replication_type
  raw_retention_days    = var.raw_retention_days

  kafka_brokers           = var.kafka_brokers
  kafka_topics            = var.kafka_topics
  kafka_group_id          = var.kafka_group_id
  kafka_security_protocol = var.kafka_security_protocol
  kafka_sasl_mechanism    = var.kafka_sasl_mechanism
  kafka_sasl_username     = var.kafka_sasl_username
  kafka_sasl_password     = var.kafka_sasl_password

  enable_worker_app      = true
  worker_image           = var.worker_image
  worker_registry_server = var.worker_registry_server
  worker_registry_id     = var.worker_registry_id
  worker_max_replicas    = var.worker_max_replicas
  worker_secret_version  = var.worker_secret_version
  env_credential         = var.env_credential

  worker_mode                        = var.worker_mode
  worker_schedule_cron               = var.worker_schedule_cron
  worker_job_replica_timeout_seconds = var.worker_job_replica_timeout_seconds
  worker_job_retry_limit             = var.worker_job_retry_limit
  worker_pass_max_seconds            = var.worker_pass_max_seconds

  enable_blob_trigger_subscription = var.enable_blob_trigger_subscription
}
