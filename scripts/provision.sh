#!/usr/bin/env bash
# Provisions the whole private-network setup routeproof exists to prove, deploys routeproof
# into it and prints the proof:
#
#   resource group -> VNet -> integration subnet (delegated for the plan) + private-endpoint
#   subnet -> storage account -> plan -> Linux Function App (custom handler, system-assigned
#   identity, VNet integration, route-all) -> [Azure SQL server, Entra-only, public access off
#   -> private endpoint -> private DNS zone privatelink.database.windows.net -> VNet link ->
#   the endpoint's DNS zone group] -> routeproof config -> scripts/package.sh ->
#   scripts/deploy.sh -> wait for /api/health -> function key -> GET /api/probe (text report)
#
# Idempotent: every resource is looked up (`az ... show`) before it is created, and a
# resource or setting that exists is left as it is, so a second run changes nothing.
#
# Usage: scripts/provision.sh [--env FILE] [--with-sql|--without-sql] [--lock-storage]
#                             [--dry-run] [--no-deploy] [--print-config]
#   --env FILE      the settings (default scripts/provision.env; see scripts/provision.env.example)
#   --with-sql      also create the private Azure SQL server (WITH_SQL=true); --without-sql: don't
#   --lock-storage  the locked-down layout (LOCK_STORAGE=true; scripts/provision-lock.sh): private
#                   endpoints for the storage account's blob, queue, table and file services and
#                   their four privatelink zones, the content share over the VNet, a Key Vault
#                   behind its endpoint with one Key Vault reference, then storage public access off
#   --dry-run       print every command in order and call nothing: no az, no login, no network
#   --no-deploy     stop after the infrastructure (no package, deploy or probe)
#   --print-config  print the routeproof config that would be packaged, and exit
#
# Exit codes: 0 the route is proven (every target ok), 1 the probe ran and a target failed
# (the report says which layer and why), 2 bad arguments or settings, 3 an Azure or tool error.
# Secrets (function keys, storage keys, connection strings) are never printed.
set -euo pipefail

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 3))); then
    echo "provision.sh: needs bash 4.3 or newer (this is $BASH_VERSION; on macOS: brew install bash)" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_file="$root/scripts/provision.env"
dry=0
deploy=1
print_config=0
sql_flag=""
lock_flag=""

say() { printf 'provision.sh: %s\n' "$*" >&2; }
die() { # die CODE MESSAGE...
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
        --with-sql) sql_flag=true; shift ;;
        --without-sql) sql_flag=false; shift ;;
        --lock-storage) lock_flag=true; shift ;;
        --dry-run) dry=1; shift ;;
        --no-deploy) deploy=0; shift ;;
        --print-config) print_config=1; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die 2 "unknown argument: $1 (see --help)" ;;
    esac
done

# ---------------------------------------------------------------------------------------
# Settings: KEY=VALUE lines, parsed (never executed); unknown keys are errors.
# ---------------------------------------------------------------------------------------
declare -A cfg=(
    [SUBSCRIPTION_ID]="" [RESOURCE_GROUP]="" [LOCATION]=""
    [PLAN_KIND]="" [PLAN_NAME]="" [PLAN_SKU]=""
    [FLEX_INSTANCE_MEMORY]="2048" [FLEX_MAXIMUM_INSTANCE_COUNT]=""
    [VNET_NAME]="" [VNET_PREFIX]=""
    [INTEGRATION_SUBNET_NAME]="" [INTEGRATION_SUBNET_PREFIX]=""
    [PE_SUBNET_NAME]="" [PE_SUBNET_PREFIX]=""
    [STORAGE_ACCOUNT]="" [FUNCTION_APP]=""
    [ROUTEPROOF_SCHEDULE]="0 */5 * * * *" [ROUTEPROOF_CONFIG_FILE]=""
    [WITH_SQL]="false" [SQL_SERVER]="" [SQL_DATABASE]="" [SQL_ENTRA_ADMIN]="app"
    [SQL_PRIVATE_ENDPOINT]="" [SQL_DNS_LINK]=""
    [LOCK_STORAGE]="false" [KEY_VAULT]="" [KEY_VAULT_SECRET]="routeproof-canary" [LOCK_DNS_LINK]=""
    [HEALTH_TIMEOUT_SECONDS]="900"
)
errors=()
bad() { errors+=("$*"); }

[[ -f "$env_file" ]] || die 2 "no settings file at $env_file (copy scripts/provision.env.example and edit it)"

re_blank='^[[:space:]]*(#.*)?$'
re_assign='^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$'
re_dq='^"([^"]*)"[[:space:]]*(#.*)?$'
re_sq="^'([^']*)'[[:space:]]*(#.*)?\$"
re_plain='^([^#]*[^#[:space:]])?[[:space:]]*(#.*)?$'
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ $line =~ $re_blank ]] && continue
    if [[ ! $line =~ $re_assign ]]; then
        bad "line $lineno: expected KEY=VALUE, got: $line"
        continue
    fi
    key="${BASH_REMATCH[1]}"
    raw="${BASH_REMATCH[2]}"
    raw="${raw#"${raw%%[![:space:]]*}"}"
    if [[ $raw =~ $re_dq || $raw =~ $re_sq ]]; then
        value="${BASH_REMATCH[1]}"
    elif [[ $raw == \"* || $raw == \'* ]]; then
        bad "line $lineno: $key: unterminated quote"
        continue
    elif [[ $raw =~ $re_plain ]]; then
        value="${BASH_REMATCH[1]}"
    else
        bad "line $lineno: $key: cannot read the value"
        continue
    fi
    if [[ ! -v "cfg[$key]" ]]; then
        bad "line $lineno: unknown key $key"
        continue
    fi
    cfg[$key]="$value"
done <"$env_file"
[[ -n "$sql_flag" ]] && cfg[WITH_SQL]="$sql_flag"
[[ -n "$lock_flag" ]] && cfg[LOCK_STORAGE]="$lock_flag"

# ---------------------------------------------------------------------------------------
# Validation: every problem is reported at once, each naming its key.
# ---------------------------------------------------------------------------------------
require() {
    local k
    for k in "$@"; do
        [[ -n "${cfg[$k]}" ]] || bad "$k is missing (see scripts/provision.env.example)"
    done
}
matches() { # matches KEY REGEX WHAT
    local v="${cfg[$1]}"
    [[ -z "$v" || $v =~ $2 ]] || bad "$1: \`$v\` is not $3"
}

require SUBSCRIPTION_ID RESOURCE_GROUP LOCATION PLAN_KIND VNET_NAME VNET_PREFIX \
    INTEGRATION_SUBNET_NAME INTEGRATION_SUBNET_PREFIX PE_SUBNET_NAME PE_SUBNET_PREFIX \
    STORAGE_ACCOUNT FUNCTION_APP ROUTEPROOF_SCHEDULE

kind="${cfg[PLAN_KIND]}"
case "$kind" in
    flex) ;;
    premium)
        require PLAN_NAME PLAN_SKU
        matches PLAN_SKU '^EP[1-3]$' "an Elastic Premium SKU (EP1, EP2, EP3)"
        ;;
    dedicated)
        require PLAN_NAME PLAN_SKU
        # Isolated (App Service Environment) plans are left out: they cannot use regional
        # VNet integration (the environment itself is in the VNet).
        matches PLAN_SKU '^(B[1-3]|S[1-3]|P[0-5]m?[vV][2-4])$' \
            "a Basic/Standard/Premium App Service SKU with VNet integration (e.g. B1, S1, P0v3, P1v3)"
        ;;
    "") ;;
    *) bad "PLAN_KIND: \`$kind\` is not flex, premium or dedicated" ;;
esac

matches SUBSCRIPTION_ID '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' "a subscription id (a GUID)"
matches RESOURCE_GROUP '^[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]$' "a resource group name (1-90 of letters, digits, - _ . ( ), not ending in .)"
matches LOCATION '^[a-z][a-z0-9]+$' "a region name as az writes it (e.g. westeurope, eastus2)"
matches PLAN_NAME '^[A-Za-z0-9][-A-Za-z0-9]{0,58}[A-Za-z0-9]?$' "a plan name (letters, digits, hyphens)"
matches VNET_NAME '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,62}[A-Za-z0-9_])?$' "a virtual network name"
matches INTEGRATION_SUBNET_NAME '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$' "a subnet name"
matches PE_SUBNET_NAME '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$' "a subnet name"
matches STORAGE_ACCOUNT '^[a-z0-9]{3,24}$' "a storage account name (3-24 lowercase letters and digits)"
matches FUNCTION_APP '^[A-Za-z0-9]([-A-Za-z0-9]{0,58}[A-Za-z0-9])?$' "an app name (2-60 letters, digits and hyphens, no hyphen at either end)"
matches WITH_SQL '^(true|false)$' "true or false"
matches FLEX_INSTANCE_MEMORY '^(512|2048|4096)$' "512, 2048 or 4096"
matches FLEX_MAXIMUM_INSTANCE_COUNT '^[1-9][0-9]{0,3}$' "a whole number of instances"
matches HEALTH_TIMEOUT_SECONDS '^[1-9][0-9]{0,4}$' "a number of seconds"
sched_words=0
read -r -a sched_fields <<<"${cfg[ROUTEPROOF_SCHEDULE]}" && sched_words=${#sched_fields[@]}
[[ -z "${cfg[ROUTEPROOF_SCHEDULE]}" || $sched_words == 6 ]] ||
    bad "ROUTEPROOF_SCHEDULE: \`${cfg[ROUTEPROOF_SCHEDULE]}\` is not an NCRONTAB expression of six fields (second minute hour day month weekday)"
if [[ $kind == flex && "${cfg[INTEGRATION_SUBNET_NAME]}" == *_* ]]; then
    bad "INTEGRATION_SUBNET_NAME: Flex Consumption does not support subnet names with underscores"
fi

# IPv4 prefixes: well formed, aligned, inside the VNet, not overlapping, big enough.
declare -A net=() len=()
int_to_ip() { printf '%d.%d.%d.%d' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
parse_prefix() { # parse_prefix KEY: sets net[KEY] and len[KEY]
    local k=$1 v="${cfg[$1]}" ip n mask
    [[ -n "$v" ]] || return 0
    if [[ ! $v =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]]; then
        bad "$k: \`$v\` is not an IPv4 prefix such as 10.60.1.0/26"
        return 0
    fi
    local o1=$((10#${BASH_REMATCH[1]})) o2=$((10#${BASH_REMATCH[2]})) o3=$((10#${BASH_REMATCH[3]})) o4=$((10#${BASH_REMATCH[4]}))
    n=$((10#${BASH_REMATCH[5]}))
    if ((o1 > 255 || o2 > 255 || o3 > 255 || o4 > 255 || n > 32)); then
        bad "$k: \`$v\` is not an IPv4 prefix (octets 0-255, length 0-32)"
        return 0
    fi
    ip=$(((o1 << 24) | (o2 << 16) | (o3 << 8) | o4))
    mask=$(((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF))
    if (((ip & mask) != ip)); then
        bad "$k: \`$v\` has host bits set; the prefix is $(int_to_ip $((ip & mask)))/$n"
        return 0
    fi
    net[$k]=$ip
    len[$k]=$n
}
inside() { # inside INNER OUTER
    [[ -v "net[$1]" && -v "net[$2]" ]] || return 0
    local mask=$(((0xFFFFFFFF << (32 - len[$2])) & 0xFFFFFFFF))
    ((len[$1] >= len[$2] && (net[$1] & mask) == net[$2])) ||
        bad "$1: ${cfg[$1]} is not inside $2 ${cfg[$2]}"
}
disjoint() { # disjoint A B
    [[ -v "net[$1]" && -v "net[$2]" ]] || return 0
    local short=$((len[$1] < len[$2] ? len[$1] : len[$2]))
    local mask=$(((0xFFFFFFFF << (32 - short)) & 0xFFFFFFFF))
    (((net[$1] & mask) != (net[$2] & mask))) || bad "$1 ${cfg[$1]} overlaps $2 ${cfg[$2]}"
}
for k in VNET_PREFIX INTEGRATION_SUBNET_PREFIX PE_SUBNET_PREFIX; do parse_prefix "$k"; done
inside INTEGRATION_SUBNET_PREFIX VNET_PREFIX
inside PE_SUBNET_PREFIX VNET_PREFIX
disjoint INTEGRATION_SUBNET_PREFIX PE_SUBNET_PREFIX
if [[ -n "${cfg[INTEGRATION_SUBNET_NAME]}" && "${cfg[INTEGRATION_SUBNET_NAME]}" == "${cfg[PE_SUBNET_NAME]}" ]]; then
    bad "PE_SUBNET_NAME: must differ from INTEGRATION_SUBNET_NAME (a delegated subnet cannot hold private endpoints)"
fi
# Integration subnet size, per Microsoft's "Azure Functions networking options" (section
# Subnets) and "Integrate your app with an Azure virtual network" (App Service):
#  - Elastic Premium / Dedicated: /28 minimum. Every plan instance takes one address, Azure
#    keeps 5 per subnet, and a scale up/down briefly doubles the addresses in use, so a /28
#    (16 - 5 = 11 usable) scales to about 5 instances; /26 (59 usable, ~29 instances) is the
#    recommendation for Linux.
#  - Flex Consumption: /27 recommended for one app, /26 for several apps or past 1,000
#    instances (outbound goes through up to 27 shared gateways, one address each; plan ~40
#    addresses per app). Smaller subnets only reduce outbound capacity: a warning, not an error.
if [[ -v "len[INTEGRATION_SUBNET_PREFIX]" ]]; then
    il=${len[INTEGRATION_SUBNET_PREFIX]}
    case "$kind" in
        flex)
            ((il <= 29)) || bad "INTEGRATION_SUBNET_PREFIX: the smallest Azure subnet is a /29, got /$il"
            ((il <= 27 || il > 29)) || say "warning: INTEGRATION_SUBNET_PREFIX /$il is smaller than the /27 Microsoft recommends for one Flex Consumption app: outbound traffic uses up to 27 shared gateways in the subnet (one address each) and about 40 addresses per app, so a smaller subnet reduces outbound network capacity (load-test before production; a subnet cannot be resized while in use)"
            ;;
        premium | dedicated)
            ((il <= 28)) || bad "INTEGRATION_SUBNET_PREFIX: VNet integration needs at least a /28, got /$il"
            ((il <= 26 || il > 28)) || say "warning: INTEGRATION_SUBNET_PREFIX /$il leaves room for about $(((1 << (32 - il)) / 2 - 3)) instances; Microsoft recommends /26 for Linux (a subnet cannot be resized while in use)"
            ;;
    esac
fi
if [[ -v "len[PE_SUBNET_PREFIX]" ]] && ((len[PE_SUBNET_PREFIX] > 29)); then
    bad "PE_SUBNET_PREFIX: the smallest Azure subnet is a /29, got /${len[PE_SUBNET_PREFIX]}"
fi

with_sql=0
if [[ "${cfg[WITH_SQL]}" == true ]]; then
    with_sql=1
    require SQL_SERVER
    matches SQL_SERVER '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' "a SQL server name (lowercase letters, digits, hyphens; 1-63)"
    matches SQL_DATABASE '^[^<>*%&:\\/?]{1,128}$' "a database name"
    matches SQL_ENTRA_ADMIN '^(app|signed-in-user)$' "app or signed-in-user"
    matches SQL_PRIVATE_ENDPOINT '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$' "a private endpoint name"
    matches SQL_DNS_LINK '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$' "a link name"
    [[ -n "${cfg[SQL_PRIVATE_ENDPOINT]}" ]] || cfg[SQL_PRIVATE_ENDPOINT]="pe-${cfg[SQL_SERVER]}"
    [[ -n "${cfg[SQL_DNS_LINK]}" ]] || cfg[SQL_DNS_LINK]="link-${cfg[VNET_NAME]}"
fi
lock=0
matches LOCK_STORAGE '^(true|false)$' "true or false"
if [[ "${cfg[LOCK_STORAGE]}" == true ]]; then
    lock=1
    require KEY_VAULT
    matches KEY_VAULT '^[A-Za-z][-A-Za-z0-9]{1,22}[A-Za-z0-9]$' "a Key Vault name (3-24 letters, digits and hyphens, starting with a letter)"
    matches KEY_VAULT_SECRET '^[-A-Za-z0-9]{1,127}$' "a secret name (letters, digits, hyphens)"
    matches LOCK_DNS_LINK '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$' "a link name"
    [[ -n "${cfg[LOCK_DNS_LINK]}" ]] || cfg[LOCK_DNS_LINK]="link-${cfg[VNET_NAME]}"
fi
if [[ -n "${cfg[ROUTEPROOF_CONFIG_FILE]}" && ! -f "${cfg[ROUTEPROOF_CONFIG_FILE]}" ]]; then
    bad "ROUTEPROOF_CONFIG_FILE: no file at ${cfg[ROUTEPROOF_CONFIG_FILE]}"
fi

if [[ ${#errors[@]} -gt 0 ]]; then
    for e in "${errors[@]}"; do say "invalid settings in $env_file: $e"; done
    exit 2
fi

sub="${cfg[SUBSCRIPTION_ID]}"
rg="${cfg[RESOURCE_GROUP]}"
loc="${cfg[LOCATION]}"
vnet="${cfg[VNET_NAME]}"
int_subnet="${cfg[INTEGRATION_SUBNET_NAME]}"
pe_subnet="${cfg[PE_SUBNET_NAME]}"
storage="${cfg[STORAGE_ACCOUNT]}"
app="${cfg[FUNCTION_APP]}"
plan="${cfg[PLAN_NAME]}"
sql="${cfg[SQL_SERVER]}"
db="${cfg[SQL_DATABASE]}"
dns_zone="privatelink.database.windows.net"
rg_id="/subscriptions/$sub/resourceGroups/$rg"
int_subnet_id="$rg_id/providers/Microsoft.Network/virtualNetworks/$vnet/subnets/$int_subnet"
sql_id="$rg_id/providers/Microsoft.Sql/servers/$sql"
dns_zone_id="$rg_id/providers/Microsoft.Network/privateDnsZones/$dns_zone"
if [[ $kind == flex ]]; then
    delegation="Microsoft.App/environments"
else
    delegation="Microsoft.Web/serverFarms"
fi
config_rel="dist/provision/routeproof.toml"

# ---------------------------------------------------------------------------------------
# The routeproof config that is packaged: the storage account the host depends on (DNS,
# TCP, TLS through the VNet) and, with SQL, the server through its private endpoint, which
# must resolve (via the privatelink CNAME) to an address in the private-endpoint subnet.
# ---------------------------------------------------------------------------------------
routeproof_config() {
    cat <<EOF
# Generated by scripts/provision.sh from $(basename "$env_file"); packaged as config/default.toml.
# Check it with: routeproof check --config FILE

[engine]
deadline = "2m"
concurrency = 16

[engine.timeouts]
dns = "3s"
tcp = "5s"
EOF
    if ((lock)); then
        local svc
        for svc in blob queue table file; do
            cat <<EOF

# The storage account's $svc service through its private endpoint (zone
# privatelink.$svc.core.windows.net): the service layer proves the service itself answered.
[[targets]]
name = "storage-$svc"
target = "https://$storage.$svc.core.windows.net/"
private = true
addresses = ["${cfg[PE_SUBNET_PREFIX]}"]
EOF
        done
        cat <<EOF

# The content share's mount: SMB 445 to the file endpoint, NEGOTIATE answered.
[[targets]]
name = "content-share"
target = "smb://$storage.file.core.windows.net"
private = true
addresses = ["${cfg[PE_SUBNET_PREFIX]}"]

# The Key Vault behind its endpoint: the vault's own witness of our address must be private.
[[targets]]
name = "key-vault"
target = "https://${cfg[KEY_VAULT]}.vault.azure.net/"
private = true
addresses = ["${cfg[PE_SUBNET_PREFIX]}"]
EOF
    else
        cat <<EOF

# The app's own storage account, reached through the VNet (route-all): DNS, TCP and TLS.
[[targets]]
name = "storage-blob"
target = "tls://$storage.blob.core.windows.net"
EOF
    fi
    if ((with_sql)); then
        local path=""
        [[ -n "$db" ]] && path="/$db"
        cat <<EOF

# The SQL server through its private endpoint: the public name must resolve through
# $dns_zone to an address in the private-endpoint subnet, then
# TDS logs in with the app's managed identity.
[[targets]]
name = "sql"
target = "sqlserver://$sql.database.windows.net:1433$path"
private = true
addresses = ["${cfg[PE_SUBNET_PREFIX]}"]
authentication = "managed_identity"
EOF
    fi
}

if ((print_config)); then
    if [[ -n "${cfg[ROUTEPROOF_CONFIG_FILE]}" ]]; then
        cat "${cfg[ROUTEPROOF_CONFIG_FILE]}"
    else
        routeproof_config
    fi
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Running az, or printing it. fd 3 is the original stdout: the dry run prints commands
# there even from inside $(...). Nothing secret is ever part of a command line.
# ---------------------------------------------------------------------------------------
exec 3>&1

quote() { # shell-quote one word: bare when safe, else in single quotes
    if [[ $1 =~ ^[-A-Za-z0-9_./:=@,+%]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}
show() { # show WORD...: one command line
    local first=1 w
    for w in "$@"; do
        ((first)) || printf ' '
        first=0
        quote "$w"
    done
    printf '\n'
}
step_no=0
step() {
    step_no=$((step_no + 1))
    if ((dry)); then
        printf '\n# [%d] %s\n' "$step_no" "$*" >&3
    else
        say "[$step_no] $*"
    fi
}
note() {
    if ((dry)); then printf '# %s\n' "$*" >&3; else say "$*"; fi
}
redact() { # keep secrets that Azure may echo in an error out of the output (portable sed)
    sed -E \
        -e 's/([Aa]ccount[Kk]ey|[Ss]hared[Aa]ccess[Kk]ey|[Pp]assword|[Pp]wd)=[^;"'"'"' ]*/\1=***/g' \
        -e 's/([?&]([Cc]ode|sig|sv|se|sp)=)[^&"'"'"' ]*/\1***/g' \
        -e 's/([Xx]-[Ff]unctions-[Kk]ey:[[:space:]]*)[^"'"'"' ]*/\1***/g'
}
az_run() { # a command that changes something
    if ((dry)); then
        show az "$@" >&3
        return 0
    fi
    printf '+ %s' "$(show az "$@")" | redact >&2
    printf '\n' >&2
    local err
    if ! err="$(az "$@" 2>&1 >/dev/null)"; then
        printf '%s\n' "$err" | redact >&2
        die 3 "$(show az "$@") failed (above); fix it and run provision.sh again: what exists is kept"
    fi
}
az_get() { # a read-only query; prints its result (nothing in a dry run)
    if ((dry)); then
        show az "$@" >&3
        return 0
    fi
    local out err_file
    err_file="$(mktemp)"
    if ! out="$(az "$@" 2>"$err_file")"; then
        redact <"$err_file" >&2
        rm -f "$err_file"
        die 3 "az $* failed (above)"
    fi
    rm -f "$err_file"
    printf '%s' "$out"
}
az_exists() { # az_exists GROUP... show ARGS: 0 when the resource exists, 1 when it does not
    if ((dry)); then
        show az "$@" --output none >&3
        return 1
    fi
    local err
    if err="$(az "$@" --output none 2>&1)"; then
        return 0
    fi
    if grep -qiE 'not ?found|could not be found|was not found|does not exist|NotFound' <<<"$err"; then
        return 1
    fi
    printf '%s\n' "$err" | redact >&2
    die 3 "az $* failed (above): cannot tell whether it exists"
}
exists_note() { ((dry)) || say "  exists, left as it is: $*"; }

if ((!dry)); then
    command -v az >/dev/null || die 3 "the Azure CLI (az) is not installed: https://aka.ms/azure-cli (or run --dry-run)"
    command -v curl >/dev/null || die 3 "curl is needed to wait for the app and call /api/probe"
    [[ "$sub" != 00000000-0000-0000-0000-000000000000 ]] ||
        die 2 "SUBSCRIPTION_ID is the example's placeholder: set your subscription id in $env_file"
fi

if ((dry)); then
    cat >&3 <<EOF
# routeproof provision plan: dry run, nothing below was run or sent to Azure.
# settings: $(basename "$env_file"); plan: $kind${cfg[PLAN_SKU]:+ (${cfg[PLAN_SKU]})}; SQL: $( ((with_sql)) && echo "yes (admin: ${cfg[SQL_ENTRA_ADMIN]})" || echo no); locked storage: $( ((lock)) && echo "yes (Key Vault ${cfg[KEY_VAULT]})" || echo no)
# An \`az ... show\` line is an existence check: the create after it runs only when
# nothing was found, and an existing resource is left as it is. Values that only Azure
# knows appear as <...>; secrets never appear (the function key is shown as ***).
EOF
fi

# ---------------------------------------------------------------------------------------
step "subscription $sub"
if ((dry)); then
    show az account show --query id --output tsv >&3
    show az account set --subscription "$sub" >&3
else
    current="$(az account show --query id --output tsv 2>/dev/null)" ||
        die 3 "not logged in to Azure: run az login (or use --dry-run)"
    if [[ "${current,,}" != "${sub,,}" ]]; then
        az_run account set --subscription "$sub"
    fi
fi

# ---------------------------------------------------------------------------------------
step "resource providers"
providers=(Microsoft.Storage Microsoft.Network Microsoft.Web)
[[ $kind == flex ]] && providers+=(Microsoft.App)
((with_sql)) && providers+=(Microsoft.Sql)
((lock)) && providers+=(Microsoft.KeyVault)
for p in "${providers[@]}"; do
    state="$(az_get provider show --namespace "$p" --query registrationState --output tsv)"
    if [[ "$state" != Registered ]]; then
        az_run provider register --namespace "$p" --wait
    fi
done

# ---------------------------------------------------------------------------------------
step "resource group $rg in $loc"
if az_exists group show --name "$rg"; then
    exists_note "resource group $rg"
else
    az_run group create --name "$rg" --location "$loc" --output none
fi

# ---------------------------------------------------------------------------------------
step "virtual network $vnet ${cfg[VNET_PREFIX]}"
if az_exists network vnet show --resource-group "$rg" --name "$vnet"; then
    exists_note "virtual network $vnet"
else
    az_run network vnet create --resource-group "$rg" --name "$vnet" --location "$loc" \
        --address-prefixes "${cfg[VNET_PREFIX]}" --output none
fi

# ---------------------------------------------------------------------------------------
# The integration subnet carries the app's outbound traffic into the VNet. The app does
# not run in it, and it holds nothing else: no private endpoints, no other delegation.
step "integration subnet $int_subnet ${cfg[INTEGRATION_SUBNET_PREFIX]}, delegated to $delegation"
if az_exists network vnet subnet show --resource-group "$rg" --vnet-name "$vnet" --name "$int_subnet"; then
    exists_note "subnet $int_subnet"
    if ((!dry)); then
        have="$(az_get network vnet subnet show --resource-group "$rg" --vnet-name "$vnet" --name "$int_subnet" \
            --query 'delegations[].serviceName' --output tsv)"
        grep -qixF "$delegation" <<<"$have" ||
            die 3 "subnet $int_subnet exists but is not delegated to $delegation (it has: ${have:-none}); use an empty subnet or fix the delegation"
    fi
else
    az_run network vnet subnet create --resource-group "$rg" --vnet-name "$vnet" --name "$int_subnet" \
        --address-prefixes "${cfg[INTEGRATION_SUBNET_PREFIX]}" --delegations "$delegation" --output none
fi

# ---------------------------------------------------------------------------------------
step "private-endpoint subnet $pe_subnet ${cfg[PE_SUBNET_PREFIX]}"
if az_exists network vnet subnet show --resource-group "$rg" --vnet-name "$vnet" --name "$pe_subnet"; then
    exists_note "subnet $pe_subnet"
else
    az_run network vnet subnet create --resource-group "$rg" --vnet-name "$vnet" --name "$pe_subnet" \
        --address-prefixes "${cfg[PE_SUBNET_PREFIX]}" --output none
fi

# ---------------------------------------------------------------------------------------
step "storage account $storage (AzureWebJobsStorage: the host's keys, timer locks, deployments)"
if az_exists storage account show --resource-group "$rg" --name "$storage"; then
    exists_note "storage account $storage"
else
    az_run storage account create --resource-group "$rg" --name "$storage" --location "$loc" \
        --sku Standard_LRS --kind StorageV2 --min-tls-version TLS1_2 \
        --allow-blob-public-access false --https-only true --output none
fi

# ---------------------------------------------------------------------------------------
if [[ $kind != flex ]]; then
    step "$kind plan $plan (${cfg[PLAN_SKU]}, Linux)"
    if az_exists functionapp plan show --resource-group "$rg" --name "$plan"; then
        exists_note "plan $plan"
    else
        az_run functionapp plan create --resource-group "$rg" --name "$plan" --location "$loc" \
            --sku "${cfg[PLAN_SKU]}" --is-linux true --output none
    fi
fi

# ---------------------------------------------------------------------------------------
step "function app $app (Linux, custom handler)"
if az_exists functionapp show --resource-group "$rg" --name "$app"; then
    exists_note "function app $app"
elif [[ $kind == flex ]]; then
    flex_args=(--flexconsumption-location "$loc" --instance-memory "${cfg[FLEX_INSTANCE_MEMORY]}")
    [[ -n "${cfg[FLEX_MAXIMUM_INSTANCE_COUNT]}" ]] &&
        flex_args+=(--maximum-instance-count "${cfg[FLEX_MAXIMUM_INSTANCE_COUNT]}")
    az_run functionapp create --resource-group "$rg" --name "$app" --storage-account "$storage" \
        "${flex_args[@]}" --runtime custom --https-only true --output none
else
    az_run functionapp create --resource-group "$rg" --name "$app" --storage-account "$storage" \
        --plan "$plan" --os-type Linux --runtime custom --functions-version 4 --https-only true --output none
fi

# ---------------------------------------------------------------------------------------
step "system-assigned managed identity of $app"
principal="$(az_get functionapp identity show --resource-group "$rg" --name "$app" --query principalId --output tsv)"
if [[ -z "$principal" ]]; then
    az_run functionapp identity assign --resource-group "$rg" --name "$app" --output none
    principal="$(az_get functionapp identity show --resource-group "$rg" --name "$app" --query principalId --output tsv)"
    ((dry)) && principal="<principal-id-of-$app>"
    [[ -n "$principal" ]] || die 3 "$app has no system-assigned identity after az functionapp identity assign"
else
    exists_note "identity $principal"
fi

# ---------------------------------------------------------------------------------------
step "VNet integration: $app's outbound traffic through $vnet/$int_subnet"
current_subnet="$(az_get functionapp show --resource-group "$rg" --name "$app" --query virtualNetworkSubnetId --output tsv)"
if [[ "${current_subnet,,}" == "${int_subnet_id,,}" ]]; then
    exists_note "integration with $int_subnet"
else
    [[ -z "$current_subnet" ]] || say "warning: $app is integrated with $current_subnet; moving it to $int_subnet"
    az_run functionapp vnet-integration add --resource-group "$rg" --name "$app" --vnet "$vnet" \
        --subnet "$int_subnet" --output none
fi

if [[ $kind != flex ]]; then
    # Without route-all only RFC 1918 destinations enter the VNet: a name that resolves to
    # a public address would bypass the VNet, its NSGs and route tables. (Flex always
    # routes all outbound traffic through the VNet; there is no switch.)
    step "route-all (vnetRouteAllEnabled)"
    route_all="$(az_get functionapp config show --resource-group "$rg" --name "$app" --query vnetRouteAllEnabled --output tsv)"
    if [[ "$route_all" == true ]]; then
        exists_note "route-all is on"
    else
        az_run functionapp config set --resource-group "$rg" --name "$app" --vnet-route-all-enabled true --output none
    fi
fi
if [[ $kind == dedicated ]]; then
    step "Always On (a Dedicated plan unloads an idle app, and then the timer does not fire)"
    always_on="$(az_get functionapp config show --resource-group "$rg" --name "$app" --query alwaysOn --output tsv)"
    if [[ "$always_on" == true ]]; then
        exists_note "Always On is on"
    else
        az_run functionapp config set --resource-group "$rg" --name "$app" --always-on true --output none
    fi
fi

# ---------------------------------------------------------------------------------------
# Only the names of the settings are read, never their values (AzureWebJobsStorage is a
# connection string with the account key). Settings that exist are left as they are.
step "app settings (only the missing ones are set)"
names="$(az_get functionapp config appsettings list --resource-group "$rg" --name "$app" --query '[].name' --output tsv)"
settings=()
grep -qx ROUTEPROOF_SCHEDULE <<<"$names" || settings+=("ROUTEPROOF_SCHEDULE=${cfg[ROUTEPROOF_SCHEDULE]}")
if [[ $kind != flex ]]; then
    grep -qx FUNCTIONS_WORKER_RUNTIME <<<"$names" || settings+=("FUNCTIONS_WORKER_RUNTIME=custom")
fi
if [[ ${#settings[@]} -gt 0 ]]; then
    az_run functionapp config appsettings set --resource-group "$rg" --name "$app" \
        --settings "${settings[@]}" --output none
else
    exists_note "the settings routeproof needs are present"
fi

# ---------------------------------------------------------------------------------------
if ((lock)); then
    # shellcheck source=scripts/provision-lock.sh
    source "$root/scripts/provision-lock.sh"
    lock_storage_steps
fi

# ---------------------------------------------------------------------------------------
if ((with_sql)); then
    step "Azure SQL server $sql: Microsoft Entra-only, public network access off"
    if az_exists sql server show --resource-group "$rg" --name "$sql"; then
        exists_note "SQL server $sql (its admin and network settings are not changed)"
    else
        if [[ "${cfg[SQL_ENTRA_ADMIN]}" == app ]]; then
            # An application admin is named by its client (application) id, which the
            # system-assigned identity's service principal carries as appId.
            admin_type=Application
            admin_name="$app"
            sp_cmd=(ad sp show --id "$principal" --query appId --output tsv)
            admin_sid=""
            if ((dry)); then
                az_get "${sp_cmd[@]}"
                admin_sid="<client-id-of-$app-identity>"
            else
                # A new identity's service principal can take a moment to replicate.
                for _ in 1 2 3 4 5 6 7 8 9; do
                    admin_sid="$(az "${sp_cmd[@]}" 2>/dev/null)" && [[ -n "$admin_sid" ]] && break
                    say "  waiting for the service principal of $app's identity to replicate"
                    sleep 10
                done
            fi
        else
            admin_type=User
            who="$(az_get ad signed-in-user show --query '[id,userPrincipalName]' --output tsv)"
            if ((dry)); then
                admin_sid="<your-object-id>"
                admin_name="<your-user-principal-name>"
            else
                admin_sid="$(sed -n 1p <<<"$who")"
                admin_name="$(sed -n 2p <<<"$who")"
            fi
        fi
        [[ -n "$admin_sid" ]] || die 3 "could not find the id of the SQL admin ($admin_type $admin_name)"
        az_run sql server create --resource-group "$rg" --name "$sql" --location "$loc" \
            --enable-ad-only-auth --external-admin-principal-type "$admin_type" \
            --external-admin-name "$admin_name" --external-admin-sid "$admin_sid" \
            --enable-public-network false --minimal-tls-version 1.2 --output none
    fi

    if [[ -n "$db" ]]; then
        step "database $db (Basic)"
        if az_exists sql db show --resource-group "$rg" --server "$sql" --name "$db"; then
            exists_note "database $db"
        else
            az_run sql db create --resource-group "$rg" --server "$sql" --name "$db" \
                --service-objective Basic --backup-storage-redundancy Local --output none
        fi
    fi


    pe="${cfg[SQL_PRIVATE_ENDPOINT]}"
    step "private endpoint $pe: $sql's private address in $pe_subnet"
    if az_exists network private-endpoint show --resource-group "$rg" --name "$pe"; then
        exists_note "private endpoint $pe"
    else
        az_run network private-endpoint create --resource-group "$rg" --name "$pe" --location "$loc" \
            --vnet-name "$vnet" --subnet "$pe_subnet" --private-connection-resource-id "$sql_id" \
            --group-id sqlServer --connection-name "$pe-connection" --output none
    fi

    # Without this zone, linked to the VNet, the app's DNS answers the public name with
    # the public address even though the private endpoint exists.
    step "private DNS zone $dns_zone"
    if az_exists network private-dns zone show --resource-group "$rg" --name "$dns_zone"; then
        exists_note "private DNS zone $dns_zone"
    else
        az_run network private-dns zone create --resource-group "$rg" --name "$dns_zone" --output none
    fi

    step "link $dns_zone to $vnet (resolution only, no auto-registration)"
    link="${cfg[SQL_DNS_LINK]}"
    if az_exists network private-dns link vnet show --resource-group "$rg" --zone-name "$dns_zone" --name "$link"; then
        exists_note "VNet link $link"
    else
        az_run network private-dns link vnet create --resource-group "$rg" --zone-name "$dns_zone" \
            --name "$link" --virtual-network "$vnet" --registration-enabled false --output none
    fi

    # The zone group writes (and keeps up to date) the endpoint's A record in the zone.
    step "DNS zone group of $pe: its A record in $dns_zone"
    if az_exists network private-endpoint dns-zone-group show --resource-group "$rg" --endpoint-name "$pe" --name default; then
        exists_note "DNS zone group default"
    else
        az_run network private-endpoint dns-zone-group create --resource-group "$rg" --endpoint-name "$pe" \
            --name default --private-dns-zone "$dns_zone_id" --zone-name sql --output none
    fi

    if [[ "${cfg[SQL_ENTRA_ADMIN]}" == signed-in-user ]]; then
        note "The admin is you, so the app's identity has no login yet: routeproof proves DNS, TCP and"
        note "TLS to $sql and reports tds.login_failed. To let it log in, connect as the admin from"
        note "inside $vnet (public access is off) and run in ${db:-master}:"
        note "  CREATE USER [$app] FROM EXTERNAL PROVIDER;"
    fi
fi

if ((!deploy)); then
    note "--no-deploy: infrastructure done; run without --no-deploy to deploy routeproof and probe"
    exit 0
fi

# ---------------------------------------------------------------------------------------
if [[ -n "${cfg[ROUTEPROOF_CONFIG_FILE]}" ]]; then
    config_arg="${cfg[ROUTEPROOF_CONFIG_FILE]}"
    step "routeproof config: $config_arg (ROUTEPROOF_CONFIG_FILE)"
else
    config_arg="$config_rel"
    step "routeproof config, written to $config_rel"
    if ((dry)); then
        routeproof_config | sed 's/^/#   /; s/[[:space:]]*$//' >&3
    else
        mkdir -p "$root/dist/provision"
        routeproof_config >"$root/$config_rel"
        config_arg="$root/$config_rel"
    fi
fi

step "build the deployment package"
if ((dry)); then
    show scripts/package.sh --config "$config_arg" >&3
else
    "$root/scripts/package.sh" --config "$config_arg" || die 3 "scripts/package.sh failed"
fi

step "deploy (zip deploy; the settings deploy.sh checks for are already set)"
deploy_args=(--resource-group "$rg" --name "$app")
[[ $kind == flex ]] && deploy_args+=(--flex)
if ((dry)); then
    show scripts/deploy.sh "${deploy_args[@]}" >&3
    note "which runs:"
    show az functionapp deployment source config-zip -g "$rg" -n "$app" --src dist/routeproof-app.zip >&3
else
    "$root/scripts/deploy.sh" "${deploy_args[@]}" || die 3 "scripts/deploy.sh failed"
fi

# ---------------------------------------------------------------------------------------
step "wait for the host: GET /api/health (anonymous) until it answers 200"
host="$(az_get functionapp show --resource-group "$rg" --name "$app" --query defaultHostName --output tsv)"
((dry)) && host="$app.azurewebsites.net"
[[ -n "$host" ]] || die 3 "$app has no defaultHostName"
health=(curl --silent --show-error --max-time 10 "https://$host/api/health")
if ((dry)); then
    show "${health[@]}" >&3
    note "repeated every 10 s, for at most ${cfg[HEALTH_TIMEOUT_SECONDS]} s"
else
    health_timeout="${cfg[HEALTH_TIMEOUT_SECONDS]}"
    deadline=$((SECONDS + health_timeout))
    until body="$("${health[@]}" 2>/dev/null)" && [[ "$body" == *'"service":"routeproof"'* ]]; do
        if ((SECONDS >= deadline)); then
            die 3 "https://$host/api/health did not answer within ${cfg[HEALTH_TIMEOUT_SECONDS]} s: check the app's log stream (az webapp log tail -g $rg -n $app), inbound access restrictions, and that the deployment succeeded"
        fi
        say "  waiting for https://$host/api/health ..."
        sleep 10
    done
    say "  $body"
fi

# ---------------------------------------------------------------------------------------
# The key is read into a variable, sent in a header read from a pipe (never in a command
# line, where ps would show it), and never printed.
step "function key of probe (kept in memory, never printed)"
key_cmd=(functionapp function keys list --resource-group "$rg" --name "$app" --function-name probe
    --query default --output tsv)
key=""
if ((dry)); then
    show az "${key_cmd[@]}" >&3
else
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do
        key="$(az "${key_cmd[@]}" 2>/dev/null)" && [[ -n "$key" ]] && break
        say "  the host has not listed the probe function's keys yet; retrying in 10 s"
        sleep 10
    done
    [[ -n "$key" ]] || die 3 "no function key for probe: the host did not index the function (see the app's log stream)"
fi

step "GET /api/probe, Accept: text/plain: the proof"
if ((dry)); then
    show curl --silent --show-error --max-time 120 -H 'Accept: text/plain' -H 'x-functions-key: ***' \
        "https://$host/api/probe" >&3
    exit 0
fi
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status="$(curl --silent --show-error --max-time 120 -o "$report" -w '%{http_code}' \
    -H 'Accept: text/plain' -H @<(printf 'x-functions-key: %s\n' "$key") \
    "https://$host/api/probe")" || die 3 "GET https://$host/api/probe failed"
key=""
redact <"$report"
case "$status" in
    200)
        say "the route is proven: every target passed (the report is above)"
        exit 0
        ;;
    503)
        say "a target failed: the report above names the layer, the class and the likely Azure cause."
        say "A private endpoint or DNS record can take a few minutes after creation: call /api/probe again, or re-run provision.sh (it changes nothing that exists)."
        exit 1
        ;;
    *)
        die 3 "/api/probe answered HTTP $status (the body is above)"
        ;;
esac
