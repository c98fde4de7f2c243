terraform {
  # Provider-free on purpose: `terraform init` and `terraform test` run offline.
  # `terraform test` needs >= 1.6; the module itself only needs validation blocks.
  required_version = ">= 1.0"
}
