variable "project" {
  type        = string
  description = "Short project name used in every resource name: 2-10 lowercase letters or digits, starting with a letter (storage account and Key Vault names leave no room for more)."
  default     = "superhero"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.project))
    error_message = "The project must be 2-10 characters, lowercase letters and digits, starting with a letter (for example \"superhero\")."
  }
}

variable "environment" {
  type        = string
  description = "Deployment stage; one of dev, test, staging, prod. Its first letter goes into the globally unique names."
  default     = "dev"

  validation {
    condition     = contains(["dev", "test", "staging", "prod"], var.environment)
    error_message = "The environment must be one of dev, test, staging, prod."
  }
}

variable "suffix" {
  type        = string
  description = "Up to 6 lowercase letters or digits appended to globally unique names (storage accounts, Function App, Key Vault). The root module derives one from the subscription id when left empty."
  default     = ""

  validation {
    condition     = can(regex("^[a-z0-9]{0,6}$", var.suffix))
    error_message = "The suffix must be 0-6 characters, lowercase letters and digits only."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags merged over the default ones (project, environment, managed-by)."
  default     = {}
}
