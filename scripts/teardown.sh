#!/usr/bin/env bash
# Removes what scripts/provision.sh created: deletes RESOURCE_GROUP (from the same settings
# file) with everything in it, after you type its name to confirm.
#
# Usage: scripts/teardown.sh [--env FILE] [--yes] [--no-wait] [--dry-run]
#   --env FILE  the settings provision.sh used (default scripts/provision.env)
#   --yes       do not ask (needed when there is no terminal to ask on)
#   --no-wait   return once Azure has accepted the deletion
#   --dry-run   print the az commands and call nothing
#
# Not deleted: the Log Analytics workspace `az functionapp create` may have created for
# Application Insights in DefaultResourceGroup-<REGION> (shared with other apps there).
# Exit codes: 0 deleted (or nothing to delete), 2 bad arguments or settings or not confirmed,
# 3 an Azure error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_file="$root/scripts/provision.env"
dry=0
yes=0
no_wait=0

say() { printf 'teardown.sh: %s\n' "$*" >&2; }
die() {
    local code=$1
    shift
    say "$*"
    exit "$code"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --env)
            [[ $# -ge 2 ]] || die 2 "--env needs a file"
            env_file="$2"
            shift 2
            ;;
        --yes | -y) yes=1; shift ;;
        --no-wait) no_wait=1; shift ;;
        --dry-run) dry=1; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die 2 "unknown argument: $1 (see --help)" ;;
    esac
done

[[ -f "$env_file" ]] || die 2 "no settings file at $env_file"

# Only the two keys teardown needs, read the way provision.sh reads them (parsed, not run).
setting() {
    local line value re="^[[:space:]]*$1=(.*)\$"
    value=""
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%$'\r'}"
        [[ $line =~ $re ]] || continue
        value="${BASH_REMATCH[1]}"
    done <"$env_file"
    value="${value#"${value%%[![:space:]]*}"}"
    if [[ $value =~ ^\"([^\"]*)\" || $value =~ ^\'([^\']*)\' ]]; then
        value="${BASH_REMATCH[1]}"
    else
        value="${value%%#*}"
        value="${value%"${value##*[![:space:]]}"}"
    fi
    printf '%s' "$value"
}
sub="$(setting SUBSCRIPTION_ID)"
rg="$(setting RESOURCE_GROUP)"
[[ $sub =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] ||
    die 2 "SUBSCRIPTION_ID in $env_file is missing or not a GUID"
[[ $rg =~ ^[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]$ ]] ||
    die 2 "RESOURCE_GROUP in $env_file is missing or not a resource group name"

delete=(az group delete --name "$rg" --subscription "$sub" --yes)
((no_wait)) && delete+=(--no-wait)

if ((dry)); then
    printf '# teardown plan: dry run, nothing below was run or sent to Azure.\n'
    printf '# The delete runs only when the group exists and you confirmed (or gave --yes).\n'
    printf '%s\n' "az group show --name $rg --subscription $sub --output none"
    printf '%s\n' "az resource list --resource-group $rg --subscription $sub --query '[].[type,name]' --output tsv"
    printf '%s\n' "${delete[*]}"
    exit 0
fi

command -v az >/dev/null || die 3 "the Azure CLI (az) is not installed"
if ! err="$(az group show --name "$rg" --subscription "$sub" --output none 2>&1)"; then
    if grep -qiE 'not ?found|could not be found' <<<"$err"; then
        say "resource group $rg does not exist in $sub: nothing to delete"
        exit 0
    fi
    printf '%s\n' "$err" >&2
    die 3 "cannot read resource group $rg (logged in? az login)"
fi

say "resource group $rg (subscription $sub) holds:"
az resource list --resource-group "$rg" --subscription "$sub" --query '[].[type,name]' --output tsv |
    sed 's/^/  /' >&2 || true

if ((!yes)); then
    [[ -t 0 ]] || die 2 "no terminal to confirm on: re-run with --yes to delete $rg"
    printf 'teardown.sh: type the resource group name (%s) to delete it and everything in it: ' "$rg" >&2
    read -r answer || answer=""
    [[ "$answer" == "$rg" ]] || die 2 "not confirmed: nothing was deleted"
fi

say "deleting $rg$( ((no_wait)) && echo ' (not waiting)')"
"${delete[@]}" || die 3 "az group delete failed"
say "done"
