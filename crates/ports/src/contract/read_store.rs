//! The `ReadStore` promises that span its ports: a reset drops the
//! projections and the projector's checkpoints, and only those, since the
//! command log, the files, the definitions and other consumers' positions
//! can not be rebuilt from the events.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use casewire_domain::types::TenantId;

use crate::{CommandRecord, CommandStatus, FileRecord, FileState, ReadStore};

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! read_store_composite_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, read_store:
            the_backend_answers_a_ping,
            reset_keeps_definitions,
            reset_keeps_the_command_log,
            reset_keeps_file_records,
            reset_forgets_the_projector_checkpoints,
            reset_keeps_other_consumers_checkpoints,
        );
    };
}

fn tenant() -> TenantId {
    super::fresh_tenant()
}

/// `ping` succeeds on a working backend.
pub async fn the_backend_answers_a_ping<S: ReadStore>(store: Arc<S>) {
    store.ping().await.expect("ping");
}

/// Definitions are imported, not projected: a reset keeps them.
pub async fn reset_keeps_definitions<S: ReadStore>(store: Arc<S>) {
    let (tenant, _, _) = super::definitions::two_versions(&*store).await;
    store.reset_projections().await.expect("reset");
    assert!(
        store
            .get_definition(&tenant, "contract", None)
            .await
            .expect("get")
            .is_some(),
        "reset keeps definitions"
    );
}

/// The command log is not derived from events: a reset keeps it.
pub async fn reset_keeps_the_command_log<S: ReadStore>(store: Arc<S>) {
    let record = CommandRecord {
        id: Uuid::now_v7(),
        tenant: tenant(),
        case_id: Uuid::now_v7(),
        command_type: "case.assign".into(),
        status: CommandStatus::Pending,
        actor: "alice".into(),
        accepted_at: Utc::now(),
        finished_at: None,
        revision: None,
        error: None,
    };
    store.insert_command(&record).await.expect("insert");
    store.reset_projections().await.expect("reset");
    let got = store.get_command(record.id).await.expect("get");
    assert_eq!(
        got.map(|r| r.status),
        Some(CommandStatus::Pending),
        "reset keeps commands"
    );
}

/// An upload is not a case event: a reset keeps file records.
pub async fn reset_keeps_file_records<S: ReadStore>(store: Arc<S>) {
    let file = FileRecord {
        id: Uuid::now_v7(),
        tenant: tenant(),
        name: "kept.pdf".into(),
        content_type: "application/pdf".into(),
        size: 3,
        sha256: "ab".repeat(32),
        uploaded_by: "alice".into(),
        uploaded_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("time"),
        cases: vec![],
        state: FileState::Uploaded,
        detached_at: None,
    };
    store.insert_file(&file).await.expect("insert");
    store.reset_projections().await.expect("reset");
    let got = store.get_file(&file.tenant, file.id).await.expect("get");
    assert_eq!(got, Some(file), "reset keeps files");
}

/// After a reset the projector starts again from the first event.
pub async fn reset_forgets_the_projector_checkpoints<S: ReadStore>(store: Arc<S>) {
    store.save_checkpoint("projector", 42).await.expect("save");
    store.reset_projections().await.expect("reset");
    assert_eq!(store.checkpoint("projector").await.expect("checkpoint"), None);
}

/// Other consumers did not read the projections: they keep their place.
pub async fn reset_keeps_other_consumers_checkpoints<S: ReadStore>(store: Arc<S>) {
    store.save_checkpoint("notifier", 7).await.expect("save");
    store.reset_projections().await.expect("reset");
    assert_eq!(store.checkpoint("notifier").await.expect("checkpoint"), Some(7));
}
