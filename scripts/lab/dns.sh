# shellcheck shell=bash
# shellcheck disable=SC2016 # zone files: $ORIGIN and $TTL are literal
# The lab's three DNS servers (sourced by scripts/lab.sh; docs/lab.md has the picture):
#   public DNS  198.51.100.53 (rpl-inet)   the internet's answer for the public names;
#   Azure DNS   168.63.129.16 (rpl-azdns)  recursive; serves the private DNS zones when
#                                          they are "linked", else only the public answer;
#   custom DNS  10.60.0.4     (rpl-dnsc)   the customer's recursive server, with or
#                                          without conditional forwarders to Azure DNS.
# All are unbound. The two recursive ones forward "." to the public DNS, which serves its
# zones and sends everything else to a dead loopback port: no query can leave the lab.

# The privatelink zones the lab's services use.
PL_ZONES="privatelink.database.windows.net privatelink.vaultcore.azure.net privatelink.azurewebsites.net"

# Public view: each service name CNAMEs to its privatelink name (as Azure's public DNS
# does for a resource with a private endpoint), and the public privatelink zones end on
# the services' public addresses. Separate zones, so a resolver chases each hop itself
# and a linked private zone can take over the privatelink hop.
dns_write_public_zones() {
    local d=$1
    zone_head() { printf '$ORIGIN %s.\n$TTL 60\n@ IN SOA ns1.%s. hostmaster.%s. ( 1 3600 600 86400 60 )\n@ IN NS ns1.%s.\nns1 IN A 198.51.100.53\n' "$1" "$1" "$1" "$1"; }
    {
        zone_head database.windows.net
        for n in myserver redirsql pendingsql v6only; do
            echo "$n IN CNAME $n.privatelink.database.windows.net."
        done
    } >"$d/pub-database.windows.net.zone"
    {
        zone_head privatelink.database.windows.net
        echo "myserver IN A 203.0.113.10"
        echo "redirsql IN A 203.0.113.10"
        echo "pendingsql IN A 203.0.113.10"
        echo "v6only IN A 203.0.113.10"
    } >"$d/pub-privatelink.database.windows.net.zone"
    {
        zone_head vault.azure.net
        echo "labvault IN CNAME labvault.privatelink.vaultcore.azure.net."
        echo "pubvault IN A 203.0.113.20"
    } >"$d/pub-vault.azure.net.zone"
    {
        zone_head privatelink.vaultcore.azure.net
        echo "labvault IN A 203.0.113.20"
    } >"$d/pub-privatelink.vaultcore.azure.net.zone"
    {
        zone_head azurewebsites.net
        echo "bigapp IN CNAME bigapp.privatelink.azurewebsites.net."
    } >"$d/pub-azurewebsites.net.zone"
    {
        zone_head privatelink.azurewebsites.net
        echo "bigapp IN A 203.0.113.30"
    } >"$d/pub-privatelink.azurewebsites.net.zone"
}

# The private DNS zones (what the private endpoints' zone groups write).
dns_write_private_zones() {
    local d=$1
    local z
    for z in $PL_ZONES; do
        printf '$ORIGIN %s.\n$TTL 60\n@ IN SOA azureprivatedns.net. azureprivatedns-host.microsoft.com. ( 1 3600 300 2419200 10 )\n' "$z" >"$d/priv-$z.zone"
    done
    {
        echo "myserver IN A 10.60.2.4"
        echo "redirsql IN A 10.60.2.8"
        echo "pendingsql IN A 10.60.2.7"
        # only an AAAA record: the IPv6-only scenario
        echo "v6only IN AAAA fd60:2::4"
    } >>"$d/priv-privatelink.database.windows.net.zone"
    echo "labvault IN A 10.60.2.5" >>"$d/priv-privatelink.vaultcore.azure.net.zone"
    echo "bigapp IN A 10.60.2.9" >>"$d/priv-privatelink.azurewebsites.net.zone"
}

# unbound.conf head shared by the three servers. Caching is off (max TTL 0), so a
# scenario that changes one server is never hidden by another server's cache.
dns_server_head() {
    local dir=$1 addr=$2 port=${3:-53}
    cat <<EOF
server:
    interface: $addr@$port
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$dir"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    do-not-query-localhost: no
    access-control: 0.0.0.0/0 allow
    module-config: "iterator"
    harden-dnssec-stripped: no
    qname-minimisation: no
    cache-max-ttl: 0
    cache-max-negative-ttl: 0
    infra-host-ttl: 1
EOF
}

# public DNS: authoritative for the public zones; the safety net for everything else.
dns_conf_public() {
    local d=$1 z
    dns_server_head "$d" 198.51.100.53
    for z in database.windows.net privatelink.database.windows.net vault.azure.net \
        privatelink.vaultcore.azure.net azurewebsites.net privatelink.azurewebsites.net; do
        # for-upstream: no keeps each answer to its own zone (a CNAME out of it is not
        # chased here), as separate authoritative servers would answer.
        printf 'auth-zone:\n    name: "%s."\n    zonefile: "%s/pub-%s.zone"\n    for-downstream: yes\n    for-upstream: no\n    fallback-enabled: no\n' "$z" "$d" "$z"
    done
    printf 'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@9\n'
}

# The private DNS zones' own server, on Azure DNS's host (127.0.0.1:5353 inside
# rpl-azdns, so nothing else can reach it): authoritative, nothing else.
dns_conf_private() {
    local d=$1 z
    dns_server_head "$d" 127.0.0.1 5353
    for z in $PL_ZONES; do
        printf 'auth-zone:\n    name: "%s."\n    zonefile: "%s/priv-%s.zone"\n    for-downstream: yes\n    for-upstream: no\n    fallback-enabled: no\n' "$z" "$d" "$z"
    done
    printf 'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@9\n'
}

# Azure DNS: recursion to public DNS; a zone "linked" to the VNet (MODE=linked) is
# asked from the private zones' server instead. (unbound does not chase a CNAME into
# its own for-upstream auth-zone when "." is forwarded, so the link is a forward-zone.)
dns_conf_azure() {
    local d=$1 mode=$2 z
    dns_server_head "$d" 168.63.129.16
    if [ "$mode" = linked ]; then
        for z in $PL_ZONES; do
            printf 'forward-zone:\n    name: "%s."\n    forward-addr: 127.0.0.1@5353\n' "$z"
        done
    fi
    printf 'forward-zone:\n    name: "."\n    forward-addr: 198.51.100.53@53\n'
}

# custom DNS: conditional forwarders for the privatelink zones (MODE=forwarder) or not.
dns_conf_custom() {
    local d=$1 mode=$2 z
    dns_server_head "$d" 10.60.0.4
    if [ "$mode" = forwarder ]; then
        for z in $PL_ZONES; do
            printf 'forward-zone:\n    name: "%s."\n    forward-addr: 168.63.129.16@53\n' "$z"
        done
    fi
    printf 'forward-zone:\n    name: "."\n    forward-addr: 198.51.100.53@53\n'
}
