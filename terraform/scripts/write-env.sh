#!/usr/bin/env bash
# Write env/azure.env from the outputs of an applied terraform/ root module.
#
#   terraform/scripts/write-env.sh            # writes <repo>/env/azure.env
#   terraform/scripts/write-env.sh other.env  # writes elsewhere
#
# The file holds no secrets (no keys exist; Kafka SASL credentials are exported separately).
set -euo pipefail

TF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$TF_DIR/.." && pwd)
OUT=${1:-$REPO/env/azure.env}

command -v terraform >/dev/null || { echo "write-env: terraform is not on PATH" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp "${OUT}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if ! terraform -chdir="$TF_DIR" output -raw azure_env >"$tmp"; then
  echo "write-env: 'terraform output azure_env' failed; run terraform apply in $TF_DIR first" >&2
  exit 1
fi
mv "$tmp" "$OUT"
trap - EXIT
echo "write-env: wrote $OUT"
