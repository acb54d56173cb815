# shellcheck shell=bash
# Sourced by scripts/provision.sh for --lock-storage (LOCK_STORAGE=true): the locked-down
# storage layout of Microsoft's "Secure storage account" / "Use private endpoints with Azure
# Functions" guidance, plus a Key Vault behind its own endpoint:
#
#   private endpoints for blob, queue, table and file -> their four privatelink zones, each
#   linked to the VNet, each endpoint's DNS zone group -> the content share over the VNet
#   (vnetContentShareEnabled; Premium/Dedicated: Flex has no content share) -> Key Vault
#   (RBAC, public network access off) -> its private endpoint, zone privatelink.vaultcore.azure.net
#   -> Key Vault Secrets User for the app's identity -> one canary secret, written through
#   the management plane (the vault's data plane is private) -> one Key Vault reference app
#   setting -> only then: the storage account's public network access off.
#
# Uses provision.sh's helpers and variables (step, az_run, az_get, az_exists, exists_note,
# note, dry, cfg, rg, loc, vnet, pe_subnet, storage, app, principal, kind, rg_id).
# shellcheck disable=SC2154

private_endpoint() { # private_endpoint NAME RESOURCE_ID GROUP ZONE WHAT
    local pe=$1 id=$2 group=$3 zone=$4 what=$5 link
    link="${cfg[LOCK_DNS_LINK]}"
    step "private endpoint $pe: $what's private address in $pe_subnet"
    if az_exists network private-endpoint show --resource-group "$rg" --name "$pe"; then
        exists_note "private endpoint $pe"
    else
        az_run network private-endpoint create --resource-group "$rg" --name "$pe" --location "$loc" \
            --vnet-name "$vnet" --subnet "$pe_subnet" --private-connection-resource-id "$id" \
            --group-id "$group" --connection-name "$pe-connection" --output none
    fi
    step "private DNS zone $zone"
    if az_exists network private-dns zone show --resource-group "$rg" --name "$zone"; then
        exists_note "private DNS zone $zone"
    else
        az_run network private-dns zone create --resource-group "$rg" --name "$zone" --output none
    fi
    step "link $zone to $vnet (resolution only, no auto-registration)"
    if az_exists network private-dns link vnet show --resource-group "$rg" --zone-name "$zone" --name "$link"; then
        exists_note "VNet link $link of $zone"
    else
        az_run network private-dns link vnet create --resource-group "$rg" --zone-name "$zone" \
            --name "$link" --virtual-network "$vnet" --registration-enabled false --output none
    fi
    step "DNS zone group of $pe: its A record in $zone"
    if az_exists network private-endpoint dns-zone-group show --resource-group "$rg" --endpoint-name "$pe" --name default; then
        exists_note "DNS zone group default of $pe"
    else
        az_run network private-endpoint dns-zone-group create --resource-group "$rg" --endpoint-name "$pe" \
            --name default --private-dns-zone "$rg_id/providers/Microsoft.Network/privateDnsZones/$zone" \
            --zone-name "$group" --output none
    fi
}

lock_storage_steps() {
    local storage_id="$rg_id/providers/Microsoft.Storage/storageAccounts/$storage"
    local app_id="$rg_id/providers/Microsoft.Web/sites/$app"
    local kv="${cfg[KEY_VAULT]}" secret="${cfg[KEY_VAULT_SECRET]}"
    local kv_id="$rg_id/providers/Microsoft.KeyVault/vaults/$kv"
    local svc

    for svc in blob queue table file; do
        private_endpoint "pe-$storage-$svc" "$storage_id" "$svc" "privatelink.$svc.core.windows.net" \
            "$storage's $svc service"
    done

    if [[ $kind != flex ]]; then
        # Without it the host mounts the content share (Azure Files, SMB 445) over the
        # internet, which public network access off then breaks.
        step "content share over the VNet (vnetContentShareEnabled): SMB 445 and 443 to the file endpoint"
        local share
        share="$(az_get resource show --ids "$app_id" --query properties.vnetContentShareEnabled --output tsv)"
        if [[ "$share" == true ]]; then
            exists_note "vnetContentShareEnabled is on"
        else
            az_run resource update --ids "$app_id" --set properties.vnetContentShareEnabled=true --output none
        fi
    else
        note "Flex Consumption has no content share: its deployment container is blob storage, reached through pe-$storage-blob"
    fi

    step "Key Vault $kv: RBAC authorisation, public network access off"
    if az_exists keyvault show --resource-group "$rg" --name "$kv"; then
        exists_note "Key Vault $kv (its network settings are not changed)"
    else
        az_run keyvault create --resource-group "$rg" --name "$kv" --location "$loc" \
            --enable-rbac-authorization true --public-network-access Disabled --output none
    fi
    private_endpoint "pe-$kv" "$kv_id" vault privatelink.vaultcore.azure.net "Key Vault $kv"

    step "role Key Vault Secrets User for $app's identity on $kv (reads secrets and their names)"
    local assigned
    assigned="$(az_get role assignment list --assignee "$principal" --role "Key Vault Secrets User" \
        --scope "$kv_id" --query '[].id' --output tsv)"
    if [[ -n "$assigned" ]]; then
        exists_note "role assignment on $kv"
    else
        az_run role assignment create --assignee-object-id "$principal" --assignee-principal-type ServicePrincipal \
            --role "Key Vault Secrets User" --scope "$kv_id" --output none
    fi

    # A canary, not a credential: the value only proves that the reference resolves.
    local secret_url="https://management.azure.com$kv_id/secrets/$secret?api-version=2023-07-01"
    step "secret $secret (a canary value, no credential) through the management plane"
    if az_exists rest --method get --url "$secret_url"; then
        exists_note "secret $secret"
    else
        az_run rest --method put --url "$secret_url" --body '{"properties":{"value":"routeproof-canary"}}' --output none
    fi

    step "Key Vault reference app setting ROUTEPROOF_KV_REFERENCE (resolved by the platform over the VNet)"
    local names
    names="$(az_get functionapp config appsettings list --resource-group "$rg" --name "$app" --query '[].name' --output tsv)"
    if grep -qx ROUTEPROOF_KV_REFERENCE <<<"$names"; then
        exists_note "ROUTEPROOF_KV_REFERENCE is set"
    else
        az_run functionapp config appsettings set --resource-group "$rg" --name "$app" \
            --settings "ROUTEPROOF_KV_REFERENCE=@Microsoft.KeyVault(SecretUri=https://$kv.vault.azure.net/secrets/$secret/)" \
            --output none
    fi

    # Last: with the endpoints, zones and content share in place, the host keeps its storage.
    step "storage account $storage: public network access off (only its private endpoints answer)"
    local access
    access="$(az_get storage account show --resource-group "$rg" --name "$storage" --query publicNetworkAccess --output tsv)"
    if [[ "$access" == Disabled ]]; then
        exists_note "public network access is off"
    else
        az_run storage account update --resource-group "$rg" --name "$storage" \
            --public-network-access Disabled --default-action Deny --output none
    fi
}
