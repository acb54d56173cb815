# shellcheck shell=bash
# The lab's scenarios (sourced by scripts/lab.sh). Each one changes the baseline world
# the way an Azure misconfiguration does, runs routeproof inside rpl-app, and asserts
# the verdict: layer, class, the hint's decisive words, the route and the witness.
# docs/lab.md tells each story. Assertions are jq filters on the JSON report:
#   expect  DESC FILTER          must hold
#   pending DESC FILTER WHY      what routeproof SHOULD say but cannot yet (WHY names
#                                the src change); a scenario whose `expect`s all hold
#                                and a `pending` fails is reported PENDING, not PASS.

# shellcheck disable=SC2034 # used by scripts/lab.sh
SCENARIOS=(
    01-healthy
    02-zone-not-linked
    03-custom-dns-no-forwarder
    04-custom-dns-down
    05-nsg-drop
    06-nsg-reject
    07-udr-dead-appliance
    08-route-all
    09-sql-redirect-blocked
    10-mtu-black-hole
    11-ipv6-only
    12-endpoint-pending
)

# ---- the baseline, restored before and after every scenario ----

lab_reset() {
    nx vnet nft flush chain inet lab forward
    nx vnet nft flush chain inet lab output
    nx pe nft flush chain inet lab input
    nx dnsc nft flush chain inet lab input
    ipn vnet rule del pref 100 2>/dev/null || true
    ipn vnet route flush table 107 2>/dev/null || true
    ipn vnet link set v-app mtu 1500
    ipn app route replace default via 169.254.254.1
    dns_mode azdns linked
    dns_mode dnsc forwarder
}

# ---- running routeproof as the Function App ----

# The [engine] section: Azure DNS inside the lab, the lab CA, short timeouts.
engine() { # ROUTE_ALL(true|false)
    cat <<EOF
[engine]
resolv_conf = "$LAB_DIR/app-resolv.conf"
azure_dns = "168.63.129.16:53"
route_all = ${1:-false}
discover = false
deadline = "20s"
ca_file = "$LAB_DIR/ca.pem"

[engine.timeouts]
dns = "1s"
tcp = "1s"
tls = "2s"
http = "2s"
body = "2s"
login = "3s"
query = "2s"
EOF
}

# The [engine] section for an app whose WEBSITE_DNS_SERVER is in effect: on Azure the
# instance's own resolver path (resolv.conf) then leads to that server, and routeproof asks
# resolv.conf first (docs/azure.md "Which DNS server the app really uses"); the lab names
# the server in the run's own resolv.conf.
engine_dns() { # RUN-NAME SERVER [ROUTE_ALL]
    printf 'nameserver %s\n' "$2" >"$LAB_DIR/runs/$1.resolv.conf"
    engine "${3:-false}" | sed "s|$LAB_DIR/app-resolv.conf|$LAB_DIR/runs/$1.resolv.conf|"
}

sql_target() { # NAME HOST [extra lines]
    printf '\n[[targets]]\nname = "%s"\ntarget = "sqlserver://%s:1433"\nuser = "app"\npassword = "env:LAB_SQL_PASSWORD"\n%s\n' "$1" "$2" "${3:-}"
}

vault_target() { # NAME HOST [extra lines]
    printf '\n[[targets]]\nname = "%s"\ntarget = "https://%s/"\nstatus = [401]\n%s\n' "$1" "$2" "${3:-}"
}

# The same vault through routeproof's service layer (no HTTP checks, so the host's
# suffix selects it): its report carries the far end's witness.
vault_service_target() { # NAME HOST [extra lines]
    printf '\n[[targets]]\nname = "%s"\ntarget = "https://%s/"\n%s\n' "$1" "$2" "${3:-}"
}

# The witness check: the Key Vault endpoint must have seen this client address.
saw() { printf 'header_contains = { "x-ms-keyvault-network-info" = "addr=%s;" }' "$1"; }

# probe RUN-NAME [VAR=VALUE...]: runs $LAB_DIR/runs/RUN-NAME.toml through routeproof in rpl-app with the App
# Service settings a VNet-integrated Function App has; the report lands in $_R.
probe() {
    local run=$1
    shift
    local cfg=$LAB_DIR/runs/$run.toml
    _R=$LAB_DIR/runs/$run.json
    # A clean environment; the password is read from its file by the shell that then
    # becomes routeproof, so it is on no command line.
    # shellcheck disable=SC2016 # expanded by that inner shell
    nx app env -i PATH=/usr/bin:/bin \
        WEBSITE_SITE_NAME=lab-func WEBSITE_INSTANCE_ID=lab-instance-0 \
        WEBSITE_PRIVATE_IP=10.60.1.4 REGION_NAME=lab WEBSITE_SKU=ElasticPremium "$@" \
        bash -c 'read -r LAB_SQL_PASSWORD <"$1"; export LAB_SQL_PASSWORD; shift; exec "$@"' \
        lab "$LAB_DIR/sql-password" "$ROUTEPROOF_BIN" probe --config "$cfg" --json \
        >"$_R" 2>"$LAB_DIR/runs/$run.err" || true
    if ! jq -e .schema "$_R" >/dev/null 2>&1; then
        _FAILS+=("$run: no JSON report (see $LAB_DIR/runs/$run.err)")
    fi
    # the SQL password went in through the environment; it must come out nowhere
    if grep -qF "$(sql_password)" "$_R" "$LAB_DIR/runs/$run.err"; then
        _FAILS+=("$run: the SQL password appears in the report or the log")
    fi
}

# ---- assertions ----

target() { _T=$1; }
_holds() {
    jq -e --arg t "$_T" "[.targets[] | select(.name == \$t)] | length == 1 and (.[0] | $1)" \
        "$_R" >/dev/null 2>&1
}
expect() { _holds "$2" || _FAILS+=("$_T: $1"); }
pending() { _holds "$2" || _PENDS+=("$_T: $1 -- needs: $3"); }
say() { _SAY=$*; }

# shorthands
ok() { expect "target ok" '.ok == true'; }
fails() { # LAYER CLASS
    expect "fails at $1 with $2" ".ok == false and .failure.layer == \"$1\" and .failure.class == \"$2\""
}
hint() { local w; for w; do expect "hint says \"$w\"" "(.failure.hint // \"\") | contains(\"$w\")"; done; }
message() { local w; for w; do expect "message says \"$w\"" "(.failure.message // \"\") | contains(\"$w\")"; done; }
path() { # PATH: every address of the target takes this path
    expect "route path $1" "(.route | length) > 0 and all(.route[]; .path == \"$1\")"
}
address() { # IP: the DNS layer resolved exactly this address
    expect "resolved to $1" "[.layers[] | select(.layer == \"dns\") | .addresses[].ip] == [\"$1\"]"
}
chain_has() { expect "CNAME chain goes through $1" "[.layers[] | select(.layer == \"dns\") | .cname_chain[]?.target] | any(contains(\"$1\"))"; }
# The far end's witness: the address the service saw, as its own header reports it, and
# routeproof's verdict on it (private_path_proven / public_path) in the service layer.
witness_is() { # IP VERDICT
    expect "the report shows the far end's witness $1 ($2 path)" \
        "[.layers[] | select(.layer == \"service\") | .witness] | first | (.witness | tostring | contains(\"$1\")) and (.conclusion | contains(\"$2\"))"
}

# ---- the scenarios ----

sc_01_healthy() {
    {
        engine
        sql_target sql myserver.database.windows.net 'private = true'
        sql_target sql-redirect redirsql.database.windows.net 'private = true'
        vault_target vault labvault.vault.azure.net "private = true
$(saw 10.60.1.4)"
        vault_service_target vault-service labvault.vault.azure.net "private = true"
    } >"$LAB_DIR/runs/01-healthy.toml"; probe 01-healthy
    target sql; ok; address 10.60.2.4; chain_has privatelink.database.windows.net; path vnet
    expect "reached tds, logged in" '.reached == "tds" and ([.layers[] | select(.layer == "tds") | .logged_in] == [true])'
    target sql-redirect; ok; path vnet
    expect "redirect followed to 11000" '[.layers[] | select(.layer == "tds") | .redirect.target] == ["redirsql.database.windows.net:11000"]'
    target vault; ok; address 10.60.2.5; path vnet
    target vault-service; ok; address 10.60.2.5; path vnet
    witness_is 10.60.1.4 private
    say "ok: sql, sql via redirect, vault (witness saw 10.60.1.4: private path)"
}

sc_02_zone_not_linked() {
    dns_mode azdns unlinked
    {
        engine
        sql_target sql myserver.database.windows.net 'private = true'
        vault_target vault labvault.vault.azure.net "$(saw 198.51.100.20)"
        vault_service_target vault-service labvault.vault.azure.net
    } >"$LAB_DIR/runs/02-zone-not-linked.toml"; probe 02-zone-not-linked
    target sql; fails dns dns.public_address; address 203.0.113.10
    hint "privatelink.database.windows.net is not linked" "Virtual network links"
    target vault; ok; address 203.0.113.20; path internet
    expect "warning names the unlinked zone" '(.warnings // []) | any(contains("privatelink.vaultcore.azure.net"))'
    target vault-service; ok; path internet
    witness_is 198.51.100.20 public
    say "sql: dns.public_address; vault (private = false): reached over the internet, witness saw 198.51.100.20"
}

sc_03_custom_dns_no_forwarder() {
    dns_mode dnsc noforwarder
    {
        engine_dns 03-custom-dns-no-forwarder 10.60.0.4
        sql_target sql myserver.database.windows.net 'private = true'
    } >"$LAB_DIR/runs/03-custom-dns-no-forwarder.toml"; probe 03-custom-dns-no-forwarder WEBSITE_DNS_SERVER=10.60.0.4
    target sql; fails dns dns.divergent
    hint "conditional forwarder for privatelink.database.windows.net to 168.63.129.16"
    message "10.60.0.4:53 (WEBSITE_DNS_SERVER) says public 203.0.113.10" "Azure DNS 168.63.129.16:53 resolves it to private 10.60.2.4"
    expect "Azure DNS answered the private address" '[.layers[] | select(.layer == "dns") | .azure_dns.addresses] == [["10.60.2.4"]]'
    say "dns.divergent: custom DNS answers public, Azure DNS 10.60.2.4"
}

sc_04_custom_dns_down() {
    nx dnsc nft add rule inet lab input udp dport 53 drop
    nx dnsc nft add rule inet lab input tcp dport 53 drop
    {
        engine_dns 04-custom-dns-down 10.60.0.4
        sql_target sql myserver.database.windows.net 'private = true'
    } >"$LAB_DIR/runs/04-custom-dns-down.toml"; probe 04-custom-dns-down WEBSITE_DNS_SERVER=10.60.0.4
    target sql; fails dns dns.timeout
    message "no answer from 10.60.0.4:53 (WEBSITE_DNS_SERVER)"
    hint "WEBSITE_DNS_SERVER" "down"
    expect "hint names the fallback WEBSITE_DNS_ALT_SERVER" '(.failure.hint // "") | (contains("WEBSITE_DNS_ALT_SERVER") and contains("no fallback"))'
    say "dns.timeout (custom DNS 10.60.0.4 silent)"
}

sc_05_nsg_drop() {
    nx vnet nft add rule inet lab forward oifname v-pe tcp dport 1433 drop
    { engine; sql_target sql myserver.database.windows.net 'private = true'; } >"$LAB_DIR/runs/05-nsg-drop.toml"; probe 05-nsg-drop
    target sql; fails tcp tcp.timeout; path vnet; hint "NSG"
    say "tcp.timeout, NSG hint"
}

sc_06_nsg_reject() {
    nx vnet nft add rule inet lab forward oifname v-pe tcp dport 1433 reject with tcp reset
    { engine; sql_target sql myserver.database.windows.net 'private = true'; } >"$LAB_DIR/runs/06-nsg-reject.toml"; probe 06-nsg-reject
    target sql; fails tcp tcp.refused; path vnet; hint "NSG"
    say "tcp.refused, NSG hint"
}

sc_07_udr_dead_appliance() {
    # route table on the integration subnet: 10.60.2.0/27 -> virtual appliance 10.60.3.4
    ipn vnet route add 10.60.2.0/27 via 10.60.3.4 table 107
    ipn vnet rule add pref 100 iif v-app to 10.60.2.0/27 lookup 107
    { engine; sql_target sql myserver.database.windows.net 'private = true'; } >"$LAB_DIR/runs/07-udr-dead-appliance.toml"; probe 07-udr-dead-appliance
    target sql; fails tcp tcp.timeout; path vnet; hint "route table (UDR)"
    say "tcp.timeout, UDR hint"
}

sc_08_route_all() {
    # off: the public target leaves through the platform (its outbound address)
    {
        engine false
        vault_target public pubvault.vault.azure.net "$(saw 198.51.100.20)"
        vault_target public-via-nat pubvault.vault.azure.net "$(saw 198.51.100.10)"
        vault_service_target public-service pubvault.vault.azure.net
    } >"$LAB_DIR/runs/08-route-all-off.toml"; probe 08-route-all-off
    target public; ok; path internet
    target public-via-nat; fails http http.body; message "addr=198.51.100.10;"
    target public-service; ok; path internet
    witness_is 198.51.100.20 public
    # on: everything enters the VNet, and the NAT gateway is its way out
    ipn app route replace default via 10.60.1.1
    {
        engine true
        vault_target public pubvault.vault.azure.net "$(saw 198.51.100.10)"
        vault_target public-via-platform pubvault.vault.azure.net "$(saw 198.51.100.20)"
        vault_service_target public-service pubvault.vault.azure.net
    } >"$LAB_DIR/runs/08-route-all-on.toml"; probe 08-route-all-on
    target public; ok; path vnet
    target public-via-platform; fails http http.body; message "addr=198.51.100.20;"
    target public-service; ok; path vnet
    witness_is 198.51.100.10 public
    say "off: path internet, witness 198.51.100.20 (platform); on: path vnet, witness 198.51.100.10 (NAT gateway)"
}

sc_09_sql_redirect_blocked() {
    nx vnet nft add rule inet lab forward oifname v-pe tcp dport 11000-11999 drop
    { engine; sql_target sql redirsql.database.windows.net 'private = true'; } >"$LAB_DIR/runs/09-sql-redirect-blocked.toml"; probe 09-sql-redirect-blocked
    target sql; fails tds tds.redirect; hint "11000-11999"; message "tcp.timeout"
    expect "the gateway itself was reached" '[.layers[] | select(.layer == "tcp") | .ok] == [true]'
    say "tds.redirect (11000-11999 hint)"
}

sc_10_mtu_black_hole() {
    # a 1400-byte hop toward the app, and the router's "fragmentation needed" dropped
    ipn vnet link set v-app mtu 1400
    nx vnet nft add rule inet lab output icmp type destination-unreachable icmp code frag-needed drop
    {
        engine
        printf '\n[[targets]]\nname = "big"\ntarget = "tls://bigapp.azurewebsites.net:443"\nprivate = true\n'
    } >"$LAB_DIR/runs/10-mtu-black-hole.toml"; probe 10-mtu-black-hole
    target big; fails tls tls.timeout; path vnet; hint "MTU"
    expect "hint names the VPN/ExpressRoute path and MSS clamping" \
        '(.failure.hint // "") | (contains("ExpressRoute") and contains("MSS"))'
    say "tls.timeout, MTU hint"
}

sc_11_ipv6_only() {
    { engine; sql_target sql v6only.database.windows.net 'private = true'; } >"$LAB_DIR/runs/11-ipv6-only.toml"; probe 11-ipv6-only
    target sql; fails tcp tcp.unreachable; hint "IPv6"
    expect "resolved to the IPv6 address only" '[.layers[] | select(.layer == "dns") | .addresses[].ip] == ["fd60:2::4"]'
    say "tcp.unreachable, IPv6 hint"
}

sc_12_endpoint_pending() {
    # the endpoint's connection is Pending (or Rejected): its address answers nothing
    nx pe nft add rule inet lab input ip daddr 10.60.2.7 drop
    { engine; sql_target sql pendingsql.database.windows.net 'private = true'; } >"$LAB_DIR/runs/12-endpoint-pending.toml"; probe 12-endpoint-pending
    target sql; fails tcp tcp.timeout; path vnet; address 10.60.2.7
    expect "hint names the endpoint's approval state" \
        '(.failure.hint // "") | (contains("Approved") and contains("Pending"))'
    say "tcp.timeout"
}

# ---- runner ----

run_scenarios() {
    local s passed=0 failed=0 pend=0 t0 t1 dur fn
    for s in "$@"; do
        fn=sc_${s//-/_}
        declare -F "$fn" >/dev/null || die "no scenario $s (see: $0 list)"
        _FAILS=() _PENDS=() _SAY=""
        t0=$(date +%s%N)
        lab_reset
        "$fn"
        lab_reset
        t1=$(date +%s%N)
        dur=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", (b - a) / 1e9 }')
        if [ ${#_FAILS[@]} -gt 0 ]; then
            failed=$((failed + 1))
            printf 'FAIL     %-28s %7s  %s\n' "$s" "$dur" "$_SAY"
            printf '           - %s\n' "${_FAILS[@]}"
            echo "           report: $_R"
        elif [ ${#_PENDS[@]} -gt 0 ]; then
            pend=$((pend + 1))
            printf 'PENDING  %-28s %7s  %s\n' "$s" "$dur" "$_SAY"
            printf '           - %s\n' "${_PENDS[@]}"
        else
            passed=$((passed + 1))
            printf 'PASS     %-28s %7s  %s\n' "$s" "$dur" "$_SAY"
        fi
    done
    echo "$passed passed, $failed failed, $pend pending"
    [ "$failed" = 0 ]
}
