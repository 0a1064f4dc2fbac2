//! `casewire admin init` against a real broker (tansu), a MongoDB-wire
//! server (SecantusDB) and an S3 server (Garage), as `tests/run` starts
//! them: the first run creates the topics, the indexes and the bucket; the
//! second finds them all and creates nothing.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use casewire_ports::contract::skip;

const BIN: &str = env!("CARGO_BIN_EXE_casewire");

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run(envs: &[(String, String)], data: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(["admin", "init", "--data-dir"])
        .arg(data)
        .envs(envs.iter().cloned())
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "admin init failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn admin_init_creates_topics_indexes_and_a_bucket_and_then_nothing() {
    let (Some(kafka), Some(mongo), Some(s3), Some(key), Some(secret)) = (
        env("CASEWIRE_TEST_KAFKA"),
        env("CASEWIRE_TEST_MONGODB"),
        env("CASEWIRE_TEST_S3"),
        env("CASEWIRE_TEST_S3_ACCESS_KEY"),
        env("CASEWIRE_TEST_S3_SECRET_KEY"),
    ) else {
        skip(
            "set CASEWIRE_TEST_KAFKA, CASEWIRE_TEST_MONGODB and CASEWIRE_TEST_S3 (tests/run starts tansu, SecantusDB and Garage)",
        );
        return;
    };
    let tag: String = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let store = casewire_mongodb::with_database(&mongo, &format!("admin_{tag}"));
    // The test's S3 URL names its bucket; this run gets one of its own.
    let rest = s3.split_once('?').map(|(_, q)| q).unwrap();
    let bucket = format!("cw-admin-{tag}");
    let envs: Vec<(String, String)> = [
        ("CASEWIRE__MODE", "dev".to_owned()),
        ("CASEWIRE__BUS__URL", format!("kafka://{kafka}")),
        ("CASEWIRE__BUS__TOPIC_PREFIX", format!("admin{tag}.")),
        ("CASEWIRE__STORE__EVENTS", store.clone()),
        ("CASEWIRE__STORE__READ", store),
        (
            "CASEWIRE__STORAGE__URL",
            format!("s3://{bucket}?{rest}&access_key={key}&secret_key={secret}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let data = tempfile::tempdir().unwrap();

    let first = run(&envs, data.path());
    for what in [
        format!("created  Kafka topic admin{tag}.casewire.commands"),
        format!("created  Kafka topic admin{tag}.casewire.events"),
        format!("created  S3 bucket {bucket}"),
        "created  MongoDB indexes at".to_owned(),
    ] {
        assert!(first.contains(&what), "{what} in:\n{first}");
    }
    let second = run(&envs, data.path());
    assert!(!second.contains("created "), "nothing the second time:\n{second}");
    assert!(second.contains("admin init: 0 created"), "{second}");
    assert_eq!(
        first.lines().count(),
        second.lines().count(),
        "the same things, found:\n{first}\n{second}"
    );
}
