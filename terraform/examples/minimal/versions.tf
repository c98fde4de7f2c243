terraform {
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.10"
    }
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.0"
    }
  }
}

# No provider blocks here: the configuration called below (terraform/, the repository's root
# module) configures azurerm itself (storage_use_azuread, the resource providers to register).
