#!/usr/bin/env bash
# Deploys dist/routeproof-app.zip (from scripts/package.sh) to an existing Function App
# with zip deploy, after making sure the app settings routeproof needs exist:
#
#   FUNCTIONS_WORKER_RUNTIME=custom   (not on Flex Consumption: there the runtime is
#                                      chosen when the app is created, `--runtime custom`)
#   ROUTEPROOF_SCHEDULE               the timer's NCRONTAB schedule. The host cannot index
#                                      the timer function while it is unset, so it is
#                                      set to the default "0 */5 * * * *" when missing,
#                                      and left alone when present.
#
# Usage: scripts/deploy.sh --resource-group RG --name APP [--zip FILE] [--flex] [--dry-run]
# Needs the Azure CLI (`az login` first). --dry-run prints the az commands only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
zip_path="$root/dist/routeproof-app.zip"
rg=""
app=""
flex=0
dry=0
default_schedule="0 */5 * * * *"

while [[ $# -gt 0 ]]; do
    case "$1" in
        -g|--resource-group) rg="$2"; shift 2 ;;
        -n|--name) app="$2"; shift 2 ;;
        --zip) zip_path="$2"; shift 2 ;;
        --flex) flex=1; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "deploy.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

say() { printf 'deploy.sh: %s\n' "$*" >&2; }
run() {
    if [[ $dry == 1 ]]; then
        printf 'az'; printf ' %q' "$@"; printf '\n'
    else
        az "$@"
    fi
}

[[ -n "$rg" && -n "$app" ]] || { say "--resource-group and --name are required"; exit 2; }
[[ -f "$zip_path" ]] || { say "no package at $zip_path: run scripts/package.sh first"; exit 2; }
if [[ $dry == 0 ]] && ! command -v az >/dev/null; then
    say "the Azure CLI (az) is not installed"; exit 2
fi

settings=()
if [[ $dry == 1 ]]; then
    existing=""
else
    existing="$(az functionapp config appsettings list -g "$rg" -n "$app" --query '[].name' -o tsv)"
fi
if ! grep -qx ROUTEPROOF_SCHEDULE <<<"$existing"; then
    settings+=("ROUTEPROOF_SCHEDULE=$default_schedule")
fi
if [[ $flex == 0 ]] && ! grep -qx FUNCTIONS_WORKER_RUNTIME <<<"$existing"; then
    settings+=("FUNCTIONS_WORKER_RUNTIME=custom")
fi
if [[ ${#settings[@]} -gt 0 ]]; then
    say "setting ${settings[*]}"
    run functionapp config appsettings set -g "$rg" -n "$app" --settings "${settings[@]}" -o none
fi

say "zip deploy of $zip_path to $app"
run functionapp deployment source config-zip -g "$rg" -n "$app" --src "$zip_path"
say "done: GET https://<app host>/api/health, then /api/probe?code=<function key>"
