terraform {
  # 1.11: write-only arguments (Key Vault secrets) and ephemeral variables.
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.10"
    }
    # Used by modules/function to remove the key-less AzureWebJobsStorage azurerm injects.
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.0"
    }
  }
}

provider "azurerm" {
  # Null falls back to ARM_SUBSCRIPTION_ID / the az CLI default subscription.
  subscription_id = var.subscription_id

  # Storage accounts have shared keys disabled: the provider must use Entra ID for data-plane calls.
  storage_use_azuread = true

  # azurerm 5.x registers nothing by default; these are the providers this configuration uses.
  resource_providers_to_register = [
    "Microsoft.App",
    "Microsoft.EventGrid",
    "Microsoft.Insights",
    "Microsoft.KeyVault",
    "Microsoft.ManagedIdentity",
    "Microsoft.OperationalInsights",
    "Microsoft.Storage",
    "Microsoft.Web",
  ]

  features {
    key_vault {
      # Purge protection is on; keep the vault recoverable on destroy.
      purge_soft_delete_on_destroy = false
    }
  }
}
