//! The `Checkpoints` promises, one function per behaviour.

use std::sync::Arc;

use uuid::Uuid;

use crate::Checkpoints;

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! checkpoints_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, checkpoints:
            an_unknown_consumer_has_no_checkpoint,
            the_last_saved_checkpoint_wins,
            checkpoints_are_per_consumer,
        );
    };
}

fn consumer() -> String {
    format!("contract-{}", Uuid::now_v7())
}

/// A consumer that never saved starts from nothing.
pub async fn an_unknown_consumer_has_no_checkpoint<S: Checkpoints>(store: Arc<S>) {
    assert_eq!(store.checkpoint(&consumer()).await.expect("checkpoint"), None);
}

/// Saving again replaces the position.
pub async fn the_last_saved_checkpoint_wins<S: Checkpoints>(store: Arc<S>) {
    let c = consumer();
    store.save_checkpoint(&c, 41).await.expect("save");
    store.save_checkpoint(&c, 42).await.expect("save");
    assert_eq!(store.checkpoint(&c).await.expect("checkpoint"), Some(42));
}

/// One consumer's save leaves the others' positions alone.
pub async fn checkpoints_are_per_consumer<S: Checkpoints>(store: Arc<S>) {
    let (a, b) = (consumer(), consumer());
    store.save_checkpoint(&a, 7).await.expect("save");
    store.save_checkpoint(&b, 9).await.expect("save");
    assert_eq!(store.checkpoint(&a).await.expect("checkpoint"), Some(7));
    assert_eq!(store.checkpoint(&b).await.expect("checkpoint"), Some(9));
}
