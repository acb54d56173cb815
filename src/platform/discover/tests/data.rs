//! Databases: SQL, PostgreSQL, MySQL, Redis, `CUSTOMCONNSTR_`.

use super::*;

#[test]
fn postgres_connection_strings_in_every_form() {
    let pg = |v: &str| run(&[("POSTGRESQLCONNSTR_pg", v)]);
    let (found, notes) = pg(
        "Host=pg1.postgres.database.azure.com;Database=orders;Username=app;Password=PLANTED;SSL Mode=Require",
    );
    assert_eq!(
        found[0].spec.to_string(),
        "postgres://pg1.postgres.database.azure.com:5432/orders"
    );
    assert_eq!(found[0].db_tls, Some(DbTls::Require));
    assert_eq!(found[0].source, "POSTGRESQLCONNSTR_pg");
    assert!(notes.is_empty(), "{notes:?}");
    for (v, want, tls) in [
        (
            "postgres://app:PLANTED@pg1.postgres.database.azure.com:6432/orders?sslmode=verify-full",
            "postgres://pg1.postgres.database.azure.com:6432/orders",
            Some(DbTls::VerifyFull),
        ),
        (
            "postgresql://pg1.postgres.database.azure.com/orders",
            "postgres://pg1.postgres.database.azure.com:5432/orders",
            None,
        ),
        (
            "jdbc:postgresql://pg1.postgres.database.azure.com:5432/orders?user=app&password=PLANTED",
            "postgres://pg1.postgres.database.azure.com:5432/orders",
            None,
        ),
        (
            "host=pg1.postgres.database.azure.com port=5433 dbname=orders user=app password=PLANTED sslmode=disable",
            "postgres://pg1.postgres.database.azure.com:5433/orders",
            Some(DbTls::Disable),
        ),
        (
            "Server=10.1.2.4;Port=5432;User Id=app;Password=PLANTED",
            "postgres://10.1.2.4:5432",
            None,
        ),
    ] {
        let (found, notes) = pg(v);
        assert_eq!(found.len(), 1, "{v}: {notes:?}");
        assert_eq!(found[0].spec.to_string(), want, "{v}");
        assert_eq!(found[0].db_tls, tls, "{v}");
    }
    let (found, notes) = pg("Host=a.example,b.example;Database=x;Password=PLANTED");
    assert_eq!(found[0].spec.to_string(), "postgres://a.example:5432/x");
    assert!(note_for(&notes, "POSTGRESQLCONNSTR_pg").contains("several hosts"));
    for (bad, why) in [
        ("Database=x;Password=PLANTED", "no Host"),
        ("Host=h;Port=abc;Password=PLANTED", "not a number"),
        ("Host=h;SSL Mode=Sometimes;Password=PLANTED", "SSL Mode"),
        ("Host=bad host!;Password=PLANTED", "not a host name"),
        ("mysql://h/x", "not a postgres:// URL"),
        ("postgres://[::1/x", "not a URL"),
    ] {
        let (found, notes) = pg(bad);
        assert!(found.is_empty(), "{bad}");
        assert!(
            note_for(&notes, "POSTGRESQLCONNSTR_pg").contains(why),
            "{bad}: {notes:?}"
        );
    }
}

#[test]
fn mysql_connection_strings() {
    let my = |v: &str| run(&[("MYSQLCONNSTR_orders", v)]);
    let (found, _) = my(
        "Server=orders.mysql.database.azure.com;Database=orders;Uid=app;Pwd=PLANTED;SslMode=Required",
    );
    assert_eq!(
        found[0].spec.to_string(),
        "mysql://orders.mysql.database.azure.com:3306/orders"
    );
    assert_eq!(found[0].db_tls, Some(DbTls::Require));
    // MySQL In App: `Data Source=127.0.0.1:PORT`.
    let (found, _) =
        my("Database=localdb;Data Source=127.0.0.1:49213;User Id=azure;Password=PLANTED");
    assert_eq!(found[0].spec.to_string(), "mysql://127.0.0.1:49213/localdb");
    let (found, _) =
        my("mysql://app:PLANTED@orders.mysql.database.azure.com/orders?ssl-mode=VERIFY_IDENTITY");
    assert_eq!(
        found[0].spec.to_string(),
        "mysql://orders.mysql.database.azure.com:3306/orders"
    );
    assert_eq!(found[0].db_tls, Some(DbTls::VerifyFull));
    let (found, notes) = my("Server=h:99999;Pwd=PLANTED");
    assert!(found.is_empty());
    assert!(note_for(&notes, "MYSQLCONNSTR_orders").contains("not a host name"));
}

#[test]
fn redis_connection_strings() {
    let (found, notes) = run(&[
        (
            "REDISCACHECONNSTR_cache",
            "orders.redis.cache.windows.net:6380,password=PLANTED=,ssl=True,abortConnect=False",
        ),
        (
            "Redis__Connection",
            "plain.redis.cache.windows.net,password=PLANTED",
        ),
        (
            "REDIS_URL",
            "rediss://:PLANTED@managed.westeurope.redis.azure.net:10000",
        ),
        ("REDIS_PASSWORD", "PLANTED,x=y"),
        ("REDIS_MODE", "cluster"),
        (
            "CacheConnection",
            "other.redis.cache.windows.net:6380,password=PLANTED,ssl=true",
        ),
        (
            "CUSTOMCONNSTR_cache",
            "10.1.2.9:6379,10.1.2.10:6379,password=PLANTED",
        ),
        ("RedisBad", "h:port,ssl=True"),
        ("RedisBad2", "h:6380,ssl=maybe"),
    ]);
    let got: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.name.clone(), f.spec.to_string()))
        .collect();
    let want = [
        ("CUSTOMCONNSTR_cache", "redis://10.1.2.9:6379"),
        (
            "CacheConnection",
            "rediss://other.redis.cache.windows.net:6380",
        ),
        (
            "REDISCACHECONNSTR_cache",
            "rediss://orders.redis.cache.windows.net:6380",
        ),
        (
            "REDIS_URL",
            "rediss://managed.westeurope.redis.azure.net:10000",
        ),
        (
            "Redis__Connection",
            "redis://plain.redis.cache.windows.net:6379",
        ),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(got, want);
    assert!(note_for(&notes, "CUSTOMCONNSTR_cache").contains("several endpoints"));
    assert!(note_for(&notes, "RedisBad").contains("not host:port"));
    assert!(note_for(&notes, "RedisBad2").contains("ssl is not"));
    assert!(
        !notes
            .iter()
            .any(|n| n.starts_with("REDIS_PASSWORD") || n.starts_with("REDIS_MODE")),
        "{notes:?}"
    );
}

#[test]
fn custom_and_sql_connection_strings() {
    let (found, notes) = run(&[
        (
            "CUSTOMCONNSTR_pg",
            "Host=pg.internal;Username=app;Password=PLANTED",
        ),
        (
            "CUSTOMCONNSTR_pgurl",
            "postgresql://app:PLANTED@pg2.internal/db",
        ),
        ("CUSTOMCONNSTR_my", "mysql://app:PLANTED@my.internal/db"),
        (
            "CUSTOMCONNSTR_sql",
            "Server=tcp:sql.internal,1433;Password=PLANTED",
        ),
        (
            "CUSTOMCONNSTR_api",
            "https://u:PLANTED@api.internal:8443/?code=PLANTED",
        ),
        (
            "SQLAZURECONNSTR_x",
            "Server=tcp:orders.database.windows.net,1433;Initial Catalog=orders;User ID=app;Password=PLANTED",
        ),
        ("SQLCONNSTR_broken", "Server=tcp:h,abc;Password=PLANTED"),
    ]);
    let got: Vec<String> = found.iter().map(|f| f.spec.to_string()).collect();
    assert_eq!(
        got,
        [
            "tls://api.internal:8443",
            "mysql://my.internal:3306/db",
            "postgres://pg.internal:5432",
            "postgres://pg2.internal:5432/db",
            "sqlserver://sql.internal:1433",
            "sqlserver://orders.database.windows.net:1433/orders",
        ]
    );
    for f in &found {
        if let TargetSpec::Sql { auth, .. } = &f.spec {
            assert!(auth.user.is_none() && auth.password.is_none());
        }
    }
    assert!(note_for(&notes, "SQLCONNSTR_broken").contains("not a number"));
}
