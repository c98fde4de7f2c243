# Values for this example (terraform.tfvars is loaded automatically). The Kafka credentials are
# NOT here: pass them from your shell so they go to Key Vault write-only and never touch state or
# disk (export TF_VAR_kafka_sasl_username / TF_VAR_kafka_sasl_password; README.md).

location    = "westeurope"
project     = "superhero"
environment = "prod"

data_replication_type = "ZRS"
raw_retention_days    = 30

# Managed Kafka (Confluent Cloud, Event Hubs Kafka endpoint, ...).
kafka_brokers           = "pkc-00000.westeurope.azure.confluent.cloud:9092"
kafka_topics            = ["superhero-events"]
kafka_group_id          = "superhero-raw-worker"
kafka_security_protocol = "SASL_SSL"
kafka_sasl_mechanism    = "PLAIN"

worker_image           = "superheroacr.azurecr.io/superhero-worker:1.0.0"
worker_registry_server = "superheroacr.azurecr.io"
# worker_registry_id   = "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/superheroacr"
worker_max_replicas = 3

# daemon: always on, scaled on consumer lag. scheduled: a Container Apps Job that lands one pass
# (every partition up to its high watermark) at each cron tick, in UTC, and exits; nothing runs
# in between. The pass ends itself after worker_pass_max_seconds, before the next tick and well
# within the replica timeout.
worker_mode                        = "daemon"
worker_schedule_cron               = "*/15 * * * *"
worker_pass_max_seconds            = 840
worker_job_replica_timeout_seconds = 1800
worker_job_retry_limit             = 1

# Set after the function package is deployed (README.md).
enable_blob_trigger_subscription = false

env_credential = "managed-identity"
