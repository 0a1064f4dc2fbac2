//! The `DefinitionStore` promises, one function per behaviour: each put is
//! a new version, kept per tenant.

use std::sync::Arc;

use casewire_domain::CaseDefinition;
use casewire_domain::types::TenantId;

use super::{fresh_tenant, tenant_id};
use crate::DefinitionStore;

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! definition_store_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, definitions:
            each_put_is_the_next_version,
            get_without_a_version_returns_the_newest,
            get_with_a_version_returns_that_version,
            definitions_are_scoped_by_tenant,
            the_list_shows_the_newest_version_only,
            calendars_are_versioned_per_tenant_apart_from_definitions,
        );
    };
}

/// The smallest valid definition, id "contract".
pub(super) fn definition() -> CaseDefinition {
    CaseDefinition::parse_yaml(
        "id: contract\nname: Contract\nkeyPrefix: CON\nstages: [{id: new}]\ninitialStage: new\npriorities: [{id: normal}]\ndefaultPriority: normal\ndefaultQueue: support\n",
    )
    .expect("definition")
}

/// A fresh tenant holding two versions of "contract", named "Contract" and
/// "Contract v2"; returns the tenant and both as stored.
pub(super) async fn two_versions<S: DefinitionStore>(store: &S) -> (TenantId, CaseDefinition, CaseDefinition) {
    let tenant = fresh_tenant();
    let def = definition();
    let v1 = store.put_definition(&tenant, &def).await.expect("put");
    let mut changed = def;
    changed.name = "Contract v2".into();
    let v2 = store.put_definition(&tenant, &changed).await.expect("put");
    (tenant, v1, v2)
}

/// Versions count from 1, one per put.
pub async fn each_put_is_the_next_version<S: DefinitionStore>(store: Arc<S>) {
    let (_, v1, v2) = two_versions(&*store).await;
    assert_eq!((v1.version, v2.version), (1, 2));
}

/// Without a version, the newest is returned.
pub async fn get_without_a_version_returns_the_newest<S: DefinitionStore>(store: Arc<S>) {
    let (tenant, _, _) = two_versions(&*store).await;
    let got = store.get_definition(&tenant, "contract", None).await.expect("get");
    assert_eq!(got.map(|d| d.name), Some("Contract v2".into()));
}

/// Older versions stay readable.
pub async fn get_with_a_version_returns_that_version<S: DefinitionStore>(store: Arc<S>) {
    let (tenant, _, _) = two_versions(&*store).await;
    let got = store.get_definition(&tenant, "contract", Some(1)).await.expect("get");
    assert_eq!(got.map(|d| (d.version, d.name)), Some((1, "Contract".into())));
}

/// Another tenant does not see them.
pub async fn definitions_are_scoped_by_tenant<S: DefinitionStore>(store: Arc<S>) {
    two_versions(&*store).await;
    assert!(
        store
            .get_definition(&tenant_id("other-tenant"), "contract", None)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .list_definitions(&tenant_id("other-tenant"))
            .await
            .expect("list")
            .is_empty()
    );
}

/// The list holds each definition once, at its newest version.
pub async fn the_list_shows_the_newest_version_only<S: DefinitionStore>(store: Arc<S>) {
    let (tenant, _, _) = two_versions(&*store).await;
    let listed = store.list_definitions(&tenant).await.expect("list");
    assert_eq!(listed.len(), 1, "the list shows the newest version only");
    assert_eq!(listed[0].version, 2);
}

/// Calendars have versions of their own, per tenant, and are no definitions.
pub async fn calendars_are_versioned_per_tenant_apart_from_definitions<S: DefinitionStore>(store: Arc<S>) {
    let (tenant, other) = (fresh_tenant(), fresh_tenant());
    let cal = casewire_domain::calendar::BusinessCalendar::parse_yaml(
        "id: contract\ntimeZone: Europe/Berlin\nhours: {mon: [\"09:00-17:00\"]}\n",
    )
    .expect("calendar");
    let v1 = store.put_calendar(&tenant, &cal).await.expect("put");
    let mut changed = cal.clone();
    changed.holidays.push("2026-12-24".parse().expect("date"));
    let v2 = store.put_calendar(&tenant, &changed).await.expect("put");
    assert_eq!((v1.version, v2.version), (1, 2));
    let newest = store.get_calendar(&tenant, "contract", None).await.expect("get");
    assert_eq!(newest.map(|c| c.holidays.len()), Some(1));
    let first = store.get_calendar(&tenant, "contract", Some(1)).await.expect("get");
    assert_eq!(first.map(|c| c.holidays.len()), Some(0));
    let listed = store.list_calendars(&tenant).await.expect("list");
    assert_eq!(listed.iter().map(|c| c.version).collect::<Vec<_>>(), [2]);
    assert!(
        store
            .get_calendar(&other, "contract", None)
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.list_calendars(&other).await.expect("list").is_empty());
    assert!(
        store.list_definitions(&tenant).await.expect("list").is_empty(),
        "no definition"
    );
    assert!(
        store
            .get_definition(&tenant, "contract", None)
            .await
            .expect("get")
            .is_none()
    );
}
