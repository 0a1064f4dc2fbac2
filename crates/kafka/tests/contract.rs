//! The Bus contract suite against Kafka: librdkafka's in-process mock
//! cluster always, and a real broker (tansu, started by `tests/run`) when
//! `CASEWIRE_TEST_KAFKA=host:port` is set. Each run uses its own topic
//! prefix, so runs never see each other's messages.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_ports::contract::skip;

use std::sync::Arc;

use casewire_kafka::{KafkaBus, KafkaSettings};
use casewire_ports::{Bus, Topic};

fn settings(servers: &str) -> KafkaSettings {
    let mut s = KafkaSettings::from_url(&format!("kafka://{servers}")).unwrap();
    s.topic_prefix = format!("contract-{}.", uuid::Uuid::now_v7().simple());
    s.partitions = 3;
    s
}

#[tokio::test]
async fn passes_the_bus_contract_on_the_mock_cluster() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let s = settings(&cluster.bootstrap_servers());
    for topic in Topic::ALL {
        cluster.create_topic(&s.topic(topic), 3, 1).unwrap();
    }
    let bus = KafkaBus::connect_only(s).unwrap();
    casewire_ports::contract::bus_contract(Arc::new(bus)).await;
}

#[tokio::test]
async fn passes_the_bus_contract_on_a_real_broker() {
    let Ok(servers) = std::env::var("CASEWIRE_TEST_KAFKA") else {
        skip("set CASEWIRE_TEST_KAFKA=host:port (tests/run starts tansu and sets it)");
        return;
    };
    let bus = KafkaBus::connect(settings(&servers)).await.unwrap();
    casewire_ports::contract::bus_contract(Arc::new(bus)).await;
}

#[tokio::test]
async fn dead_letters_carry_their_reason() {
    let Ok(servers) = std::env::var("CASEWIRE_TEST_KAFKA") else {
        skip("set CASEWIRE_TEST_KAFKA=host:port (tests/run starts tansu and sets it)");
        return;
    };
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    let s = settings(&servers);
    let dlq = s.topic(Topic::Dlq);
    let bus = KafkaBus::connect(s).await.unwrap();
    let msg = casewire_ports::BusMessage {
        topic: Topic::Commands,
        partition: 2,
        offset: 41,
        key: "case-1".into(),
        payload: b"not json".to_vec(),
        traceparent: None,
    };
    bus.dead_letter(&msg, "not a command").await.unwrap();
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", format!("dlq-check-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&dlq]).unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload(), Some(&b"not json"[..]));
    assert_eq!(got.key(), Some(&b"case-1"[..]));
    let headers = got.headers().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("casewire-dlq-reason").as_deref(), Some("not a command"));
    assert_eq!(header("casewire-dlq-offset").as_deref(), Some("41"));
}

/// Managed brokers want TLS and SASL SCRAM: the build carries OpenSSL, so
/// such a client is created (librdkafka refuses SASL_SSL outright when it
/// was built without it).
#[test]
fn a_client_for_sasl_over_tls_is_built() {
    let mut s = settings("broker.example:9093");
    for (k, v) in [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "casewire"),
        ("sasl.password", "secret"),
    ] {
        s.properties.insert(k.into(), v.into());
    }
    match KafkaBus::connect_only(s) {
        Ok(_) => {}
        Err(e) => panic!("a SASL_SSL client: {e}"),
    }
}

/// librdkafka's statistics give a group member its lag: what its
/// partitions hold beyond what it has read.
#[tokio::test]
async fn a_subscriber_knows_its_lag() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let mut s = settings(&cluster.bootstrap_servers());
    s.partitions = 1;
    s.properties.insert("statistics.interval.ms".into(), "100".into());
    for topic in Topic::ALL {
        cluster.create_topic(&s.topic(topic), 1, 1).unwrap();
    }
    let bus = KafkaBus::connect_only(s).unwrap();
    let mut sub = bus
        .subscribe(Some("lagging"), Topic::Events, casewire_ports::StartFrom::Earliest)
        .await
        .unwrap();
    // A private reader commits nothing: it has no lag, even with the
    // statistics on (they are, for every client, in these settings).
    let mut reader = bus
        .subscribe(None, Topic::Events, casewire_ports::StartFrom::Earliest)
        .await
        .unwrap();
    let messages = (0..5).map(|i| ("k".to_owned(), format!("m{i}").into_bytes())).collect();
    bus.publish(Topic::Events, messages).await.unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next())
        .await
        .expect("the first message")
        .unwrap();
    sub.commit(&first).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The lag counts from the group's committed offset (the first message,
    // committed with the next auto-commit): the four unhandled ones. The
    // statistics are served while the subscriber waits for messages, as a
    // consumer loop always does; those it reads here it never commits.
    loop {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), sub.next()).await;
        if sub.lag() == Some(4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a lag of 4 within 20 s, not {:?}",
            sub.lag()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), reader.next()).await;
    assert_eq!(reader.lag(), None, "a reader without a group has no lag");
}
