//! SASL SCRAM-SHA-256/512 against a real Kafka-compatible broker: Tansu 0.6 with
//! `--authentication` lists SCRAM-SHA-256/512 and runs the exchange, but the storage
//! engines this build carries (memory, S3: `DynoStore`) keep no SCRAM users
//! (tansu-storage 0.6 `DynoStore::user_scram_credential` returns none), so every login is
//! refused at the first SCRAM round with `e=unknown-user`, and its OAUTHBEARER accepts no
//! token at all (tansu-auth 0.6 `Callback::check` knows PLAIN and SCRAM-* only). So the
//! real broker proves the client-first message and the refusal; the accepted exchange
//! runs against RFC 7677's example (the unit tests of `probe/kafka/scram.rs`) and a
//! contract stub whose server side follows RFC 5802 section 3.

use routeproof::probe::kafka::{Credentials, ErrorKind, Options, Phase, Scram};
use routeproof::secret::Secret;

use routeproof::report::{FailureClass, Layer};

use crate::identity::failed;
use crate::kafka::{no_secret, run};
use crate::msg_peers;
use crate::support::engine::{env_of, hint, run as run_engine};

fn scram(mechanism: Scram, user: &str, password: &str) -> Credentials {
    Credentials::Scram {
        mechanism,
        user: user.into(),
        password: Secret::new(password),
    }
}

#[tokio::test]
async fn tansu_runs_scram_and_refuses_a_user_it_does_not_hold() {
    let Some(t) = msg_peers::tansu("tansu_runs_scram_and_refuses_a_user_it_does_not_hold", true)
    else {
        return;
    };
    let planted = "PLANTED-scram-pw";
    for mech in [Scram::Sha256, Scram::Sha512] {
        let o = Options {
            credentials: scram(mech, "alice", planted),
            ..Options::default()
        };
        let out = run(msg_peers::connect(t.port).await, &o, 20).await;
        let f = out.error.as_ref().expect("refused");
        assert_eq!(
            (f.kind, f.phase),
            (ErrorKind::AuthFailed, Phase::SaslAuthenticate),
            "{out:?}"
        );
        assert_eq!(f.kind.class(), "kafka.auth_failed");
        // Tansu's SCRAM answered our client-first with its own error attribute.
        assert!(f.message.contains("unknown-user"), "{f:?}");
        let ev = &out.evidence;
        assert_eq!(ev.mechanism.as_deref(), Some(mech.name()));
        assert_eq!(ev.mechanisms, [mech.name()], "{ev:?}");
        assert!(ev.brokers.is_empty());
        no_secret(&out, planted);
    }
}

#[tokio::test]
async fn engine_kafka_scram_from_the_config_reaches_tansu() {
    let Some(t) = msg_peers::tansu("engine_kafka_scram_from_the_config_reaches_tansu", true) else {
        return;
    };
    let text = format!(
        "[engine]\ndns_servers = [\"127.0.0.1:9\"]\nazure_dns = \"127.0.0.1:9\"\n\
         [[targets]]\ntarget = \"kafka://127.0.0.1:{}\"\ntls = \"disable\"\n\
         user = \"alice\"\npassword = \"env:PW\"\nsasl_mechanism = \"scram-sha-256\"\n",
        t.port
    );
    let env = env_of(&[("PW", "PLANTED-scram-pw")]);
    let r = crate::peers::bounded(30, run_engine(&text, &env, None)).await;
    let t0 = failed(&r, FailureClass::KafkaAuthFailed, Layer::Kafka);
    assert!(
        t0.failure
            .as_ref()
            .unwrap()
            .message
            .contains("unknown-user"),
        "{t0:#?}"
    );
    assert!(hint(t0).contains("SCRAM"), "{}", hint(t0));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"mechanism\":\"SCRAM-SHA-256\""), "{json}");
    assert!(!json.contains("PLANTED") && !format!("{r:?}").contains("PLANTED"));
}
