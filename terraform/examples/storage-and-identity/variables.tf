variable "location" {
  type        = string
  description = "Azure region."
}

variable "suffix" {
  type        = string
  description = "0-6 lowercase letters/digits that make the storage account names globally unique."
}
