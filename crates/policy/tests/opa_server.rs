//! The OPA-server adapter speaks OPA's Data API. No `opa` binary can be
//! installed here (no reachable registry ships one), so these tests serve
//! the API from a stand-in: the same `policies/` evaluated by regorus
//! behind `POST /v1/data/<path>` with `{"input": ...}` → `{"result": ...}`,
//! which is the part of OPA's REST API the adapter uses. They check the
//! protocol and the failure mapping; they say nothing about OPA itself.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Data, Json, Path as UrlPath};
use actix_web::{App, HttpResponse, HttpServer, post};
use casewire_domain::types::{QueueName, TenantId};
use casewire_policy::RegoPolicy;
use casewire_policy::opa::OpaServer;
use casewire_ports::Action;
use casewire_ports::{PolicyEngine, PolicyError, Resource, Subject};
use serde_json::{Value, json};

/// How the stand-in answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Evaluate,
    Failing,
    Undefined,
}

#[post("/v1/data/{path:.*}")]
async fn data(
    policy: Data<Arc<RegoPolicy>>,
    mode: Data<Mode>,
    path: UrlPath<String>,
    body: Json<Value>,
) -> HttpResponse {
    match **mode {
        Mode::Failing => return HttpResponse::InternalServerError().json(json!({"code": "internal_error"})),
        Mode::Undefined => return HttpResponse::Ok().json(json!({})),
        Mode::Evaluate => {}
    }
    let rule = format!("data.{}", path.replace('/', "."));
    match policy.eval(&rule, body["input"].clone()) {
        // OPA leaves `result` out when the rule is undefined.
        Ok(Value::String(s)) if s == "<undefined>" => HttpResponse::Ok().json(json!({})),
        Ok(v) if v.is_null() => HttpResponse::Ok().json(json!({})),
        Ok(v) => HttpResponse::Ok().json(json!({"result": v})),
        Err(e) => HttpResponse::BadRequest().json(json!({"code": "invalid_parameter", "message": e.to_string()})),
    }
}

fn serve(mode: Mode) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Arc::new(RegoPolicy::load(Some(&dir)).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(Data::new(policy.clone()))
            .app_data(Data::new(mode))
            .service(data)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://{addr}")
}

fn subject(username: &str, roles: &[&str], groups: &[&str]) -> Subject {
    Subject {
        sub: format!("id-{username}"),
        username: username.into(),
        email: Some(format!("{username}@example.com")),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        groups: groups.iter().map(|s| (*s).to_owned()).collect(),
        tenant: TenantId::parse("acme").unwrap(),
    }
}

fn case(queue: &str, confidential: bool) -> Resource {
    Resource {
        tenant: TenantId::parse("acme").unwrap(),
        queue: QueueName::parse(queue).unwrap(),
        assignee: None,
        requester: None,
        created_by: "someone".into(),
        definition: "ticket".into(),
        stage: "new".into(),
        confidential,
    }
}

#[actix_web::test]
async fn decisions_and_filters_come_from_the_data_api() {
    let opa = OpaServer::new(&serve(Mode::Evaluate), Duration::from_secs(2)).unwrap();
    let local = RegoPolicy::load(None).unwrap();
    let alice = subject("alice", &["case-worker"], &["/queues/support"]);
    for (action, resource) in [
        (Action::CaseRead, case("support", false)),
        (Action::CaseRead, case("billing", false)),
        (Action::CaseRead, case("support", true)),
        (Action::CaseAssign, case("support", false)),
    ] {
        let remote = opa.decide(&alice, &defs(), action, Some(&resource)).await.unwrap();
        let here = local.decide(&alice, &defs(), action, Some(&resource)).await.unwrap();
        assert_eq!(
            remote, here,
            "{action} on {resource:?}: the server decides as the in-process policy"
        );
    }
    assert!(
        opa.decide(&alice, &defs(), Action::CaseRead, Some(&case("support", false)))
            .await
            .unwrap()
            .allow
    );
    let filter = opa.filter(&alice, &defs()).await.unwrap();
    assert_eq!(filter, local.filter(&alice, &defs()).await.unwrap());
    assert_eq!(filter.tenant, "acme");
}

#[actix_web::test]
async fn an_unreachable_or_failing_server_is_unavailable_and_a_bad_answer_is_invalid() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone = OpaServer::new(&format!("http://{closed}"), Duration::from_secs(1)).unwrap();
    let alice = subject("alice", &["case-worker"], &[]);
    assert!(matches!(
        gone.filter(&alice, &defs()).await,
        Err(PolicyError::Unavailable(_))
    ));

    let failing = OpaServer::new(&serve(Mode::Failing), Duration::from_secs(1)).unwrap();
    assert!(matches!(
        failing.decide(&alice, &defs(), Action::CaseRead, None).await,
        Err(PolicyError::Unavailable(_))
    ));
    // A server without our package: a misconfiguration, never a silent deny.
    let empty = OpaServer::new(&serve(Mode::Undefined), Duration::from_secs(1)).unwrap();
    assert!(matches!(
        empty.filter(&alice, &defs()).await,
        Err(PolicyError::Invalid(_))
    ));
}

/// The demo definitions' access groups, as the API passes them.
fn defs() -> casewire_ports::DefinitionAccessMap {
    [
        (
            "customer-complaint".to_owned(),
            casewire_domain::definition::AccessDef {
                view: vec!["/queues/complaints".into(), "/queues/support".into()],
                work: vec!["/queues/complaints".into()],
            },
        ),
        ("ticket".to_owned(), casewire_domain::definition::AccessDef::default()),
    ]
    .into_iter()
    .collect()
}
