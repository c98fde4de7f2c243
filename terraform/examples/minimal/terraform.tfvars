# Values for this example (terraform.tfvars is loaded automatically). The worker runs outside
# Azure (laptop or VM) with env/azure.env; README.md has the commands.

location    = "westeurope"
project     = "superhero"
environment = "dev"

kafka_brokers           = "127.0.0.1:9092"
kafka_topics            = ["superhero-events"]
kafka_security_protocol = "PLAINTEXT"

# Cheapest settings for a trial run.
data_replication_type           = "LRS"
raw_retention_days              = 7
function_maximum_instance_count = 40
log_daily_quota_gb              = 0.5
