//! One decision: load, decide, report. No side effects.

use casewire_domain::types::CaseKey;
use casewire_domain::{Case, CaseCommand, CaseDefinition, CaseEvent, Decision, DomainError};
use casewire_ports::event_store::replay;
use casewire_ports::{CommandEnvelope, EventStore, ReadStore, StoreError};

/// A decision and what it was made against.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The case before the command.
    pub case: Case,
    pub definition: CaseDefinition,
    pub events: Vec<CaseEvent>,
}

/// Loads the case and its definition and runs the command's rules. The
/// outer error is infrastructure; the inner one is the domain's rejection.
pub async fn decide(
    events: &dyn EventStore,
    reads: &dyn ReadStore,
    envelope: &CommandEnvelope,
) -> Result<Result<Decided, DomainError>, StoreError> {
    let stream = events.load(&envelope.tenant, envelope.case_id).await?;
    let case = replay(&stream, None)?;
    let definition = match (&envelope.command, case.exists()) {
        (CaseCommand::Open(open), _) => reads.get_definition(&envelope.tenant, &open.definition, None).await?,
        (_, true) => {
            reads
                .get_definition(&envelope.tenant, &case.definition_id, Some(case.definition_version))
                .await?
        }
        (_, false) => return Ok(Err(DomainError::NotFound)),
    };
    let Some(definition) = definition else {
        let id = match &envelope.command {
            CaseCommand::Open(open) => open.definition.clone(),
            _ => format!("{}@{}", case.definition_id, case.definition_version),
        };
        return Ok(Err(DomainError::invalid(
            "definition",
            format!("unknown case definition '{id}'"),
        )));
    };
    let key = match &envelope.case_key {
        Some(k) => match CaseKey::parse(k) {
            Ok(k) => Some(k),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let result = case.handle(
        &envelope.command,
        &Decision {
            definition: &definition,
            actor: &envelope.actor,
            key: key.as_ref(),
        },
    );
    Ok(result.map(|events| Decided {
        case,
        definition,
        events,
    }))
}
