//! Storage: connection strings, identity-based settings, the content share, the key reference.

use super::*;

const KEYED: &str = "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=PLANTED-key==;EndpointSuffix=core.windows.net";

#[test]
fn storage_by_key_is_three_service_checks_referencing_the_setting() {
    let (found, notes) = run(&[("AzureWebJobsStorage", KEYED)]);
    let key = "shared_key:AzureWebJobsStorage";
    assert_eq!(
        shown(&found),
        [
            (
                "AzureWebJobsStorage/blob",
                "https://fnstore.blob.core.windows.net/",
                "blob",
                key,
                "AzureWebJobsStorage"
            ),
            (
                "AzureWebJobsStorage/queue",
                "https://fnstore.queue.core.windows.net/",
                "queue",
                key,
                "AzureWebJobsStorage"
            ),
            (
                "AzureWebJobsStorage/table",
                "https://fnstore.table.core.windows.net/",
                "table",
                key,
                "AzureWebJobsStorage"
            ),
        ]
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn storage_forms_explicit_endpoints_sas_sovereign_and_azurite() {
    assert_eq!(
        targets(&[(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=https;AccountName=cnstore;AccountKey=PLANTED;EndpointSuffix=core.chinacloudapi.cn"
        )]),
        [
            "https://cnstore.blob.core.chinacloudapi.cn/",
            "https://cnstore.queue.core.chinacloudapi.cn/",
            "https://cnstore.table.core.chinacloudapi.cn/"
        ]
    );
    // A SAS string names only its endpoints, and has no key to sign with.
    let (found, _) = run(&[(
        "AzureWebJobsStorage",
        "BlobEndpoint=https://sas.blob.core.windows.net/;QueueEndpoint=https://sas.queue.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=PLANTED",
    )]);
    let s = shown(&found);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].1, "https://sas.blob.core.windows.net/");
    assert_eq!(s[0].3, "none");
    // Explicit path-style endpoints on an address are Azurite; the key is referenced.
    let (found, _) = run(&[(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=PLANTED;BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;TableEndpoint=http://azurite:41002/devstoreaccount1",
    )]);
    let s = shown(&found);
    assert_eq!(
        s.iter()
            .map(|x| (x.1.as_str(), x.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("http://127.0.0.1:41000/devstoreaccount1", "blob (emulator)"),
            (
                "http://127.0.0.1:41001/devstoreaccount1",
                "queue (emulator)"
            ),
            ("http://azurite:41002/devstoreaccount1", "table (emulator)"),
        ]
    );
    // UseDevelopmentStorage=true: Azurite's default ports, its well-known key by reference.
    let (found, _) = run(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]);
    let s = shown(&found);
    assert_eq!(s[0].1, "http://127.0.0.1:10000/devstoreaccount1");
    assert_eq!(s[2].1, "http://127.0.0.1:10002/devstoreaccount1");
    assert!(s.iter().all(|x| x.3 == "shared_key:AzureWebJobsStorage"));
    // A custom domain keeps its host, declared as the service.
    let (found, _) = run(&[(
        "AzureWebJobsStorage",
        "AccountName=fnstore;AccountKey=PLANTED;BlobEndpoint=https://files.contoso.com/",
    )]);
    assert_eq!(shown(&found)[0].1, "https://files.contoso.com/");
    assert_eq!(shown(&found)[0].2, "blob");
}

#[test]
fn malformed_storage_strings_are_notes_not_targets() {
    for bad in [
        "DefaultEndpointsProtocol=https;AccountKey=PLANTED",
        "AccountName=Not_An_Account;AccountKey=PLANTED",
        "DefaultEndpointsProtocol=ftp;AccountName=fnstore;AccountKey=PLANTED",
        "AccountName=fnstore;AccountKey=PLANTED;BlobEndpoint=not a url",
        "AccountName=fnstore;AccountKey=PLANTED;BlobEndpoint=ftp://x/",
        ";;;=;==",
    ] {
        let (found, notes) = run(&[("AzureWebJobsStorage", bad)]);
        assert!(found.len() < 3, "{bad}: {found:?}");
        assert!(!note_for(&notes, "AzureWebJobsStorage").is_empty(), "{bad}");
    }
    let (found, notes) = run(&[(
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "UseDevelopmentStorage=true",
    )]);
    assert!(found.is_empty());
    assert!(
        note_for(&notes, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING").contains("no file service")
    );
}

#[test]
fn identity_based_storage_marks_the_identity_read() {
    let (found, notes) = run(&[
        ("AzureWebJobsStorage__accountName", "fnstore"),
        ("AzureWebJobsStorage__credential", "managedidentity"),
        (
            "AzureWebJobsStorage__clientId",
            "11111111-2222-3333-4444-555555555555",
        ),
        (
            "Reports__blobServiceUri",
            "https://reports.blob.core.usgovcloudapi.net",
        ),
        (
            "Reports__queueServiceUri",
            "https://reports.queue.core.usgovcloudapi.net/",
        ),
        (
            "Reports__tableServiceUri",
            "https://reports.table.core.usgovcloudapi.net/",
        ),
        ("Other__accountName", "otherstore"),
        ("Other__credential", "clientsecret"),
    ]);
    let s = shown(&found);
    let uai = "managed_identity:11111111-2222-3333-4444-555555555555";
    assert_eq!(
        s[0],
        (
            "AzureWebJobsStorage/blob".into(),
            "https://fnstore.blob.core.windows.net/".into(),
            "blob".into(),
            uai.into(),
            "AzureWebJobsStorage__accountName".into()
        )
    );
    assert_eq!(s[2].1, "https://fnstore.table.core.windows.net/");
    assert_eq!(s[2].3, uai);
    let reports: Vec<_> = s.iter().filter(|x| x.0.starts_with("Reports/")).collect();
    assert_eq!(reports.len(), 3);
    assert!(
        reports.iter().all(|x| x.3 == "managed_identity:system"),
        "{reports:?}"
    );
    assert_eq!(
        reports[1].1,
        "https://reports.queue.core.usgovcloudapi.net/"
    );
    let other: Vec<_> = s.iter().filter(|x| x.0.starts_with("Other/")).collect();
    assert!(other.iter().all(|x| x.3 == "none"), "{other:?}");
    assert!(note_for(&notes, "Other__accountName").contains("not `managedidentity`"));

    let (found, notes) = run(&[
        ("X__accountName", "Bad Name!"),
        ("Y__blobServiceUri", "not a url"),
    ]);
    assert!(found.is_empty());
    assert!(note_for(&notes, "X__accountName").contains("not a storage account name"));
    assert!(note_for(&notes, "Y__blobServiceUri").contains("not an http(s) URL"));
}

#[test]
fn content_share_is_file_over_https_and_smb_445() {
    let (found, notes) = run(&[
        ("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", KEYED),
        ("WEBSITE_CONTENTSHARE", "orders-func-share"),
        ("WEBSITE_CONTENTOVERVNET", "1"),
    ]);
    let src =
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING, WEBSITE_CONTENTSHARE, WEBSITE_CONTENTOVERVNET";
    let s = shown(&found);
    assert_eq!(
        s,
        [
            (
                "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/file",
                "https://fnstore.file.core.windows.net/",
                "file",
                "shared_key:WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
                src
            ),
            (
                "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/smb",
                "smb://fnstore.file.core.windows.net:445",
                "-",
                "-",
                src
            ),
        ]
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
    );
    assert!(
        note_for(&notes, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING")
            .contains("over the VNet (WEBSITE_CONTENTOVERVNET=1)")
    );
    // Without the setting the note names the invisible site property.
    let (found, notes) = run(&[(
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "AccountName=fnstore;AccountKey=PLANTED;FileEndpoint=https://fnstore.file.core.windows.net:8443/",
    )]);
    assert_eq!(
        found[0].spec.to_string(),
        "https://fnstore.file.core.windows.net:8443/"
    );
    assert_eq!(
        found[1].spec.to_string(),
        "smb://fnstore.file.core.windows.net:445"
    );
    assert!(
        note_for(&notes, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING")
            .contains("vnetContentShareEnabled")
    );
}

#[test]
fn storage_key_is_read_from_the_setting_at_probe_time() {
    let k = storage_key(KEYED).unwrap();
    assert_eq!(k.account.as_deref(), Some("fnstore"));
    assert_eq!(k.key.expose(), "PLANTED-key==");
    let dev = storage_key("UseDevelopmentStorage=true").unwrap();
    assert_eq!(dev.account.as_deref(), Some("devstoreaccount1"));
    assert!(dev.key.expose().starts_with("Eby8"));
    assert_eq!(storage_key("PLANTEDbase64key==").unwrap().account, None);
    let e = storage_key("BlobEndpoint=https://x/;SharedAccessSignature=sig=PLANTED").unwrap_err();
    assert!(e.contains("no AccountKey") && !e.contains("PLANTED"), "{e}");
    assert!(storage_key("").is_err());
}
