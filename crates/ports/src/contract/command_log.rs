//! The `CommandLog` promises, one function per behaviour: pending →
//! processing → processed or rejected; cancel only while pending.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::{fresh_tenant, tenant_id};
use crate::{CancelResult, ClaimResult, CommandLog, CommandRecord, CommandStatus};

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! command_log_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, command_log:
            an_inserted_command_is_pending,
            inserting_a_command_again_keeps_the_first_record,
            claim_moves_a_pending_command_to_processing,
            a_redelivered_command_is_claimed_again,
            a_claimed_command_can_not_be_cancelled,
            claiming_a_finished_command_returns_its_outcome,
            pending_and_processing_commands_are_unfinished,
            finished_commands_are_not_unfinished,
            unfinished_commands_are_scoped_by_tenant,
            a_pending_command_can_be_cancelled,
            a_cancelled_command_is_not_claimed,
            cancelling_an_unknown_command_finds_nothing,
            claiming_an_unknown_command_says_unknown,
            finishing_an_unknown_command_inserts_it,
            claims_and_finishes_in_a_batch_answer_each_in_order,
        );
    };
}

/// A command of a fresh tenant and case.
fn record(status: CommandStatus) -> CommandRecord {
    CommandRecord {
        id: Uuid::now_v7(),
        tenant: fresh_tenant(),
        case_id: Uuid::now_v7(),
        command_type: "case.assign".into(),
        status,
        actor: "alice".into(),
        accepted_at: Utc::now(),
        finished_at: None,
        revision: None,
        error: None,
    }
}

/// A pending command, inserted.
async fn pending<S: CommandLog>(store: &S) -> CommandRecord {
    let a = record(CommandStatus::Pending);
    store.insert_command(&a).await.expect("insert");
    a
}

/// `a` as processed at revision 3.
fn processed(a: &CommandRecord) -> CommandRecord {
    let mut done = a.clone();
    done.status = CommandStatus::Processed;
    done.revision = Some(3);
    done.finished_at = Some(Utc::now());
    done
}

async fn status_of<S: CommandLog>(store: &S, id: Uuid) -> Option<CommandStatus> {
    store.get_command(id).await.expect("get").map(|r| r.status)
}

/// An accepted command is recorded as pending.
pub async fn an_inserted_command_is_pending<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    assert_eq!(status_of(&*store, a.id).await, Some(CommandStatus::Pending));
}

/// A client's retry of an accepted command leaves the first record standing.
pub async fn inserting_a_command_again_keeps_the_first_record<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    assert_eq!(store.claim_command(a.id).await.expect("claim"), ClaimResult::Claimed);
    store.insert_command(&a).await.expect("inserting again is fine");
    assert_eq!(
        status_of(&*store, a.id).await,
        Some(CommandStatus::Processing),
        "the first record stands"
    );
}

/// Claiming a pending command makes it processing.
pub async fn claim_moves_a_pending_command_to_processing<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    assert_eq!(store.claim_command(a.id).await.expect("claim"), ClaimResult::Claimed);
    assert_eq!(status_of(&*store, a.id).await, Some(CommandStatus::Processing));
}

/// A command still processing (its engine died) is claimed again.
pub async fn a_redelivered_command_is_claimed_again<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    assert_eq!(store.claim_command(a.id).await.expect("claim"), ClaimResult::Claimed);
    assert_eq!(
        store.claim_command(a.id).await.expect("claim"),
        ClaimResult::Claimed,
        "redelivery claims again"
    );
}

/// Once claimed, a command runs: cancel says it is no longer pending.
pub async fn a_claimed_command_can_not_be_cancelled<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    store.claim_command(a.id).await.expect("claim");
    assert!(matches!(
        store.cancel_command(a.id).await.expect("cancel"),
        CancelResult::NotPending(_)
    ));
}

/// A finished command is not decided again: its claim returns the outcome.
pub async fn claiming_a_finished_command_returns_its_outcome<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    store.claim_command(a.id).await.expect("claim");
    store.finish_command(&processed(&a)).await.expect("finish");
    match store.claim_command(a.id).await.expect("claim") {
        ClaimResult::Finished(r) => assert_eq!((r.status, r.revision), (CommandStatus::Processed, Some(3))),
        other => panic!("expected Finished, got {other:?}"),
    }
}

/// Pending and processing commands hold their case back.
pub async fn pending_and_processing_commands_are_unfinished<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    let unfinished = || store.has_unfinished_commands(&a.tenant, a.case_id);
    assert!(unfinished().await.expect("unfinished"), "pending counts");
    store.claim_command(a.id).await.expect("claim");
    assert!(unfinished().await.expect("unfinished"), "processing counts");
}

/// A finished command no longer holds its case back.
pub async fn finished_commands_are_not_unfinished<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    store.claim_command(a.id).await.expect("claim");
    store.finish_command(&processed(&a)).await.expect("finish");
    assert!(
        !store
            .has_unfinished_commands(&a.tenant, a.case_id)
            .await
            .expect("unfinished"),
        "finished does not count"
    );
}

/// Another tenant's commands do not hold a case back.
pub async fn unfinished_commands_are_scoped_by_tenant<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    assert!(
        !store
            .has_unfinished_commands(&tenant_id("other-tenant"), a.case_id)
            .await
            .expect("unfinished")
    );
}

/// A pending command can be cancelled, and says so.
pub async fn a_pending_command_can_be_cancelled<S: CommandLog>(store: Arc<S>) {
    let b = pending(&*store).await;
    assert!(
        matches!(store.cancel_command(b.id).await.expect("cancel"), CancelResult::Cancelled(r) if r.status == CommandStatus::Cancelled)
    );
    assert_eq!(status_of(&*store, b.id).await, Some(CommandStatus::Cancelled));
}

/// A cancelled command never runs: its claim says so.
pub async fn a_cancelled_command_is_not_claimed<S: CommandLog>(store: Arc<S>) {
    let b = pending(&*store).await;
    store.cancel_command(b.id).await.expect("cancel");
    assert_eq!(store.claim_command(b.id).await.expect("claim"), ClaimResult::Cancelled);
}

/// Cancelling a command never recorded finds nothing.
pub async fn cancelling_an_unknown_command_finds_nothing<S: CommandLog>(store: Arc<S>) {
    assert_eq!(
        store.cancel_command(Uuid::now_v7()).await.expect("cancel"),
        CancelResult::NotFound
    );
}

/// Claiming a command never recorded (another producer's) says unknown.
pub async fn claiming_an_unknown_command_says_unknown<S: CommandLog>(store: Arc<S>) {
    assert_eq!(
        store.claim_command(Uuid::now_v7()).await.expect("claim"),
        ClaimResult::Unknown
    );
}

/// The outcome of a command never recorded is recorded anyway.
pub async fn finishing_an_unknown_command_inserts_it<S: CommandLog>(store: Arc<S>) {
    let c = record(CommandStatus::Rejected);
    store
        .finish_command(&c)
        .await
        .expect("finish an unknown command inserts it");
    assert_eq!(status_of(&*store, c.id).await, Some(CommandStatus::Rejected));
}

/// A batch of claims answers each command as one claim would, in order; a
/// batch of finishes records each.
pub async fn claims_and_finishes_in_a_batch_answer_each_in_order<S: CommandLog>(store: Arc<S>) {
    let a = pending(&*store).await;
    let done = pending(&*store).await;
    store.finish_command(&processed(&done)).await.expect("finish");
    let unknown = Uuid::now_v7();
    let claims = store.claim_commands(&[a.id, done.id, unknown]).await.expect("claims");
    assert!(matches!(claims[0], ClaimResult::Claimed), "{claims:?}");
    assert!(
        matches!(&claims[1], ClaimResult::Finished(r) if r.revision == Some(3)),
        "{claims:?}"
    );
    assert!(matches!(claims[2], ClaimResult::Unknown), "{claims:?}");
    assert_eq!(claims.len(), 3);
    assert_eq!(status_of(&*store, a.id).await, Some(CommandStatus::Processing));

    let b = pending(&*store).await;
    store
        .finish_commands(&[processed(&a), processed(&b)])
        .await
        .expect("finishes");
    assert_eq!(status_of(&*store, a.id).await, Some(CommandStatus::Processed));
    assert_eq!(status_of(&*store, b.id).await, Some(CommandStatus::Processed));
    store.finish_commands(&[]).await.expect("an empty batch");
}
