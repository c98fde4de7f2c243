terraform {
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.10"
    }
    # azapi_resource_action: removes the key-less AzureWebJobsStorage azurerm injects (main.tf).
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.0"
    }
  }
}
