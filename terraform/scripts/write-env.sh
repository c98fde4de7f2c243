#!/usr/bin/env bash
# Write env/azure.env from the outputs of an applied configuration (terraform/ itself, or one of
# the runnable examples under terraform/examples/).
#
#   terraform/scripts/write-env.sh                                        # terraform/ -> <repo>/env/azure.env
#   terraform/scripts/write-env.sh --chdir terraform/examples/minimal      # an example's state
#   terraform/scripts/write-env.sh other.env                              # write elsewhere
#
# The file holds no secrets (no keys exist; Kafka SASL credentials are exported separately).
set -euo pipefail

TF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$TF_DIR/.." && pwd)
CONFIG=$TF_DIR
OUT=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --chdir)
      [[ $# -ge 2 ]] || { echo "write-env: --chdir needs a directory" >&2; exit 2; }
      CONFIG=$2
      shift 2
      ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "write-env: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
OUT=${OUT:-$REPO/env/azure.env}
[[ -d "$CONFIG" ]] || { echo "write-env: $CONFIG is not a directory" >&2; exit 2; }

command -v terraform >/dev/null || { echo "write-env: terraform is not on PATH" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp "${OUT}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if ! terraform -chdir="$CONFIG" output -raw azure_env >"$tmp"; then
  echo "write-env: 'terraform output azure_env' failed; run terraform apply in $CONFIG first" >&2
  exit 1
fi
mv "$tmp" "$OUT"
trap - EXIT
echo "write-env: wrote $OUT"
