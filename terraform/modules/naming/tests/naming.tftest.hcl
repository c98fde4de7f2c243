# Offline: this module has no providers, so `terraform init -backend=false && terraform test`
# needs no registry. Run by scripts/terraform-check.

run "defaults_follow_azure_naming_rules" {
  command = plan

  variables {
    suffix = "a1b2c3"
  }

  assert {
    condition     = can(regex("^[a-z0-9]{3,24}$", output.data_storage_account))
    error_message = "data storage account name ${output.data_storage_account} breaks the 3-24 lowercase alphanumeric rule"
  }

  assert {
    condition     = can(regex("^[a-z0-9]{3,24}$", output.runtime_storage_account))
    error_message = "runtime storage account name ${output.runtime_storage_account} breaks the 3-24 lowercase alphanumeric rule"
  }

  assert {
    condition     = output.data_storage_account != output.runtime_storage_account
    error_message = "the two storage accounts must have different names"
  }

  assert {
    condition     = length(output.function_app) <= 32
    error_message = "function app name ${output.function_app} is longer than 32 characters (host id collisions)"
  }

  assert {
    condition     = output.names.resource_group == "rg-superhero-dev"
    error_message = "resource group name should be rg-<project>-<environment>, got ${output.names.resource_group}"
  }

  assert {
    condition     = output.tags["managed-by"] == "terraform" && output.tags.environment == "dev"
    error_message = "default tags are missing"
  }
}

run "longest_inputs_still_fit" {
  command = plan

  variables {
    project     = "abcdefghij"
    environment = "staging"
    suffix      = "zzzzzz"
  }

  assert {
    condition     = length(output.data_storage_account) <= 24 && length(output.runtime_storage_account) <= 24
    error_message = "storage account names exceed 24 characters with the longest inputs"
  }

  assert {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", output.key_vault))
    error_message = "key vault name ${output.key_vault} breaks the 3-24 character rule"
  }

  assert {
    condition     = length(output.function_app) <= 32
    error_message = "function app name ${output.function_app} exceeds 32 characters with the longest inputs"
  }

  assert {
    condition     = length(output.names.container_app) <= 32 && can(regex("^[a-z][a-z0-9-]*[a-z0-9]$", output.names.container_app))
    error_message = "container app name ${output.names.container_app} breaks the 32 character lowercase rule"
  }

  assert {
    condition     = length(output.names.container_app_job) <= 32 && can(regex("^[a-z][a-z0-9-]*[a-z0-9]$", output.names.container_app_job))
    error_message = "container app job name ${output.names.container_app_job} breaks the 32 character lowercase rule"
  }
}

run "caller_tags_override_defaults" {
  command = plan

  variables {
    tags = {
      owner      = "data-team"
      managed-by = "someone-else"
    }
  }

  assert {
    condition     = output.tags.owner == "data-team" && output.tags["managed-by"] == "someone-else"
    error_message = "caller tags should be merged over the defaults"
  }
}

# Planted mistakes: each must be rejected by the variable's validation block.

run "rejects_uppercase_project" {
  command = plan

  variables {
    project = "SuperHero"
  }

  expect_failures = [var.project]
}

run "rejects_too_long_project" {
  command = plan

  variables {
    project = "superherodataflow"
  }

  expect_failures = [var.project]
}

run "rejects_unknown_environment" {
  command = plan

  variables {
    environment = "production"
  }

  expect_failures = [var.environment]
}

run "rejects_suffix_with_symbols" {
  command = plan

  variables {
    suffix = "ab-12"
  }

  expect_failures = [var.suffix]
}
