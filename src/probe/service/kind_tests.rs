//! Unit tests of `kind`: suffix recognition, declared targets, names.

use super::*;

#[test]
fn recognises_every_suffix_and_rejects_lookalikes() {
    let cases = [
        (
            "acct.blob.core.windows.net",
            ServiceKind::StorageBlob,
            Cloud::Public,
            "acct",
        ),
        (
            "acct.queue.core.windows.net.",
            ServiceKind::StorageQueue,
            Cloud::Public,
            "acct",
        ),
        (
            "ACCT.Table.core.windows.net",
            ServiceKind::StorageTable,
            Cloud::Public,
            "acct",
        ),
        (
            "acct.dfs.core.chinacloudapi.cn",
            ServiceKind::StorageDfs,
            Cloud::China,
            "acct",
        ),
        (
            "acct.file.core.usgovcloudapi.net",
            ServiceKind::StorageFile,
            Cloud::UsGov,
            "acct",
        ),
        (
            "acct.privatelink.blob.core.windows.net",
            ServiceKind::StorageBlob,
            Cloud::Public,
            "acct",
        ),
        (
            "kv1.vault.azure.net",
            ServiceKind::KeyVault,
            Cloud::Public,
            "kv1",
        ),
        (
            "kv1.vault.azure.cn",
            ServiceKind::KeyVault,
            Cloud::China,
            "kv1",
        ),
        (
            "kv1.vault.usgovcloudapi.net",
            ServiceKind::KeyVault,
            Cloud::UsGov,
            "kv1",
        ),
        (
            "db.documents.azure.com",
            ServiceKind::CosmosDb,
            Cloud::Public,
            "db",
        ),
        (
            "cfg.azconfig.io",
            ServiceKind::AppConfiguration,
            Cloud::Public,
            "cfg",
        ),
        (
            "reg.azurecr.io",
            ServiceKind::ContainerRegistry,
            Cloud::Public,
            "reg",
        ),
        (
            "reg.westeurope.data.azurecr.io",
            ServiceKind::ContainerRegistry,
            Cloud::Public,
            "reg",
        ),
        (
            "func1.azurewebsites.net",
            ServiceKind::FunctionApp,
            Cloud::Public,
            "func1",
        ),
        (
            "func1.privatelink.azurewebsites.net",
            ServiceKind::FunctionApp,
            Cloud::Public,
            "func1",
        ),
        (
            "func1.chinacloudsites.cn",
            ServiceKind::FunctionApp,
            Cloud::China,
            "func1",
        ),
    ];
    for (host, kind, cloud, account) in cases {
        let t = ServiceTarget::recognise(host).unwrap_or_else(|| panic!("{host}"));
        assert_eq!(
            (t.kind, t.cloud, t.account.as_str()),
            (kind, cloud, account),
            "{host}"
        );
        assert!(t.recognised && !t.emulator);
        assert_eq!(t.path_prefix(), "");
    }
    for host in [
        "blob.core.windows.net",
        "a.b.blob.core.windows.net",
        "acct.blob.core.windows.net.evil.test",
        "acctblob.core.windows.net",
        "x.web.core.windows.net",
        "example.com",
        "reg.x.azurecr.io",
        "func1.scm.azurewebsites.net",
        "azurewebsites.net",
    ] {
        assert!(ServiceTarget::recognise(host).is_none(), "{host}");
    }
}

#[test]
fn declared_emulator_uses_path_style() {
    let t = ServiceTarget::declared(ServiceKind::StorageBlob, "127.0.0.1", None, true);
    assert_eq!(t.account, "devstoreaccount1");
    assert_eq!(t.path_prefix(), "/devstoreaccount1");
    assert!(!t.recognised);
    let c = ServiceTarget::declared(ServiceKind::KeyVault, "secrets.contoso.test", None, false);
    assert_eq!(c.account, "secrets");
    assert_eq!(c.path_prefix(), "");
}

#[test]
fn names_round_trip() {
    for k in ServiceKind::ALL {
        assert_eq!(k.as_str().parse::<ServiceKind>().unwrap(), k);
    }
    assert!("s3".parse::<ServiceKind>().is_err());
    assert_eq!(
        serde_json::to_string(&ServiceKind::KeyVault).unwrap(),
        "\"keyvault\""
    );
}
