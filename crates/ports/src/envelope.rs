//! Wire envelopes. Everything on the bus and on the NDJSON stream is a
//! CloudEvents 1.0 event in structured JSON mode, with the extensions of
//! ARCHITECTURE.md §4: `tenant`, `revision`, `correlationid`, `causationid`
//! and `actor`, plus `position` (the global event-store position) on events.

use casewire_domain::CaseCommand;
use casewire_domain::types::{CaseKey, TenantId};
use chrono::{DateTime, Utc};
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{CommandStatus, EventRecord, Rejection};

/// Why an envelope could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed envelope: {0}")]
pub struct EnvelopeError(pub String);

fn err(e: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError(e.to_string())
}

fn ext_str(event: &Event, name: &str) -> Result<String, EnvelopeError> {
    match event.extension(name) {
        Some(ExtensionValue::String(s)) => Ok(s.clone()),
        Some(ExtensionValue::Integer(i)) => Ok(i.to_string()),
        Some(ExtensionValue::Boolean(b)) => Ok(b.to_string()),
        None => Err(EnvelopeError(format!("missing extension '{name}'"))),
    }
}

/// The `tenant` extension, which must name a valid tenant.
fn ext_tenant(event: &Event) -> Result<TenantId, EnvelopeError> {
    TenantId::parse(ext_str(event, "tenant")?).map_err(err)
}

fn ext_uuid(event: &Event, name: &str) -> Result<Uuid, EnvelopeError> {
    ext_str(event, name)?.parse().map_err(err)
}

fn ext_int(event: &Event, name: &str) -> Result<u64, EnvelopeError> {
    match event.extension(name) {
        Some(ExtensionValue::Integer(i)) => u64::try_from(*i).map_err(err),
        Some(ExtensionValue::String(s)) => s.parse().map_err(err),
        _ => Err(EnvelopeError(format!("missing integer extension '{name}'"))),
    }
}

fn json_data(event: &Event) -> Result<Value, EnvelopeError> {
    match event.data() {
        Some(Data::Json(v)) => Ok(v.clone()),
        Some(Data::String(s)) => serde_json::from_str(s).map_err(err),
        Some(Data::Binary(b)) => serde_json::from_slice(b).map_err(err),
        None => Ok(Value::Null),
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An event as a CloudEvent.
pub fn event_to_cloud(record: &EventRecord) -> Event {
    let built = EventBuilderV10::new()
        .id(record.id.to_string())
        .source(format!("/casewire/{}/cases", record.tenant))
        .ty(record.event_type.clone())
        .subject(record.case_id.to_string())
        .time(record.time)
        .data("application/json", record.data.clone())
        .extension("tenant", record.tenant.to_string())
        .extension("revision", as_i64(record.revision))
        .extension("position", as_i64(record.position))
        .extension("correlationid", record.correlation_id.to_string())
        .extension("causationid", record.command_id.to_string())
        .extension("actor", record.actor.clone())
        .build();
    // The builder only fails on missing required attributes, all set above.
    built.unwrap_or_default()
}

/// An event as CloudEvents structured JSON.
pub fn event_to_json(record: &EventRecord) -> Value {
    serde_json::to_value(event_to_cloud(record)).unwrap_or(Value::Null)
}

/// Reads an event back from CloudEvents structured JSON.
pub fn event_from_json(bytes: &[u8]) -> Result<EventRecord, EnvelopeError> {
    let event: Event = serde_json::from_slice(bytes).map_err(err)?;
    Ok(EventRecord {
        id: event.id().parse().map_err(err)?,
        position: ext_int(&event, "position")?,
        tenant: ext_tenant(&event)?,
        case_id: event
            .subject()
            .ok_or_else(|| EnvelopeError("missing subject".into()))?
            .parse()
            .map_err(err)?,
        revision: ext_int(&event, "revision")?,
        event_type: event.ty().to_owned(),
        data: json_data(&event)?,
        time: event
            .time()
            .copied()
            .ok_or_else(|| EnvelopeError("missing time".into()))?,
        actor: ext_str(&event, "actor")?,
        command_id: ext_uuid(&event, "causationid")?,
        correlation_id: ext_uuid(&event, "correlationid")?,
    })
}

/// A command travelling to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandEnvelope {
    pub command_id: Uuid,
    pub case_id: Uuid,
    pub tenant: TenantId,
    pub actor: String,
    pub correlation_id: Uuid,
    /// The human key allocated by the API for `case.open`.
    pub case_key: Option<CaseKey>,
    pub issued_at: DateTime<Utc>,
    pub command: CaseCommand,
}

impl CommandEnvelope {
    /// CloudEvents JSON: type `casewire.command.<name>.v1`, subject the case id.
    pub fn to_json(&self) -> Vec<u8> {
        let payload = serde_json::to_value(&self.command).unwrap_or(Value::Null);
        let mut builder = EventBuilderV10::new()
            .id(self.command_id.to_string())
            .source(format!("/casewire/{}/commands", self.tenant))
            .ty(format!("casewire.command.{}.v1", self.command.name()))
            .subject(self.case_id.to_string())
            .time(self.issued_at)
            .data("application/json", payload.get("data").cloned().unwrap_or(Value::Null))
            .extension("tenant", self.tenant.to_string())
            .extension("actor", self.actor.clone())
            .extension("correlationid", self.correlation_id.to_string());
        if let Some(key) = &self.case_key {
            builder = builder.extension("casekey", key.to_string());
        }
        let event = builder.build().unwrap_or_default();
        serde_json::to_vec(&event).unwrap_or_default()
    }

    /// Reads a command back.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let event: Event = serde_json::from_slice(bytes).map_err(err)?;
        let name = event
            .ty()
            .strip_prefix("casewire.command.")
            .and_then(|s| s.strip_suffix(".v1"))
            .ok_or_else(|| EnvelopeError(format!("not a command type: {}", event.ty())))?;
        let command: CaseCommand =
            serde_json::from_value(serde_json::json!({"type": name, "data": json_data(&event)?})).map_err(err)?;
        Ok(CommandEnvelope {
            command_id: event.id().parse().map_err(err)?,
            case_id: event
                .subject()
                .ok_or_else(|| EnvelopeError("missing subject".into()))?
                .parse()
                .map_err(err)?,
            tenant: ext_tenant(&event)?,
            actor: ext_str(&event, "actor")?,
            correlation_id: ext_uuid(&event, "correlationid")?,
            case_key: ext_str(&event, "casekey")
                .ok()
                .map(CaseKey::parse)
                .transpose()
                .map_err(err)?,
            issued_at: event.time().copied().unwrap_or_else(Utc::now),
            command,
        })
    }
}

/// The result of one command, published on `casewire.outcomes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeStatus {
    Processed,
    Rejected,
    Cancelled,
}

impl From<OutcomeStatus> for CommandStatus {
    fn from(value: OutcomeStatus) -> Self {
        match value {
            OutcomeStatus::Processed => CommandStatus::Processed,
            OutcomeStatus::Rejected => CommandStatus::Rejected,
            OutcomeStatus::Cancelled => CommandStatus::Cancelled,
        }
    }
}

/// A command's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutcome {
    pub command_id: Uuid,
    pub case_id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub status: OutcomeStatus,
    /// Case revision after the command, when processed.
    pub revision: Option<u64>,
    /// Why, when rejected.
    pub error: Option<Rejection>,
}

impl CommandOutcome {
    /// CloudEvents JSON: type `casewire.command.outcome.v1`, subject the command id.
    pub fn to_json(&self) -> Vec<u8> {
        let event = EventBuilderV10::new()
            .id(Uuid::now_v7().to_string())
            .source(format!("/casewire/{}/outcomes", self.tenant))
            .ty("casewire.command.outcome.v1")
            .subject(self.command_id.to_string())
            .time(Utc::now())
            .data("application/json", serde_json::to_value(self).unwrap_or(Value::Null))
            .extension("tenant", self.tenant.to_string())
            .extension("causationid", self.command_id.to_string())
            .build()
            .unwrap_or_default();
        serde_json::to_vec(&event).unwrap_or_default()
    }

    /// Reads an outcome back.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let event: Event = serde_json::from_slice(bytes).map_err(err)?;
        serde_json::from_value(json_data(&event)?).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casewire_domain::command::{AssignCase, CaseCommand};
    use casewire_domain::types::UserRef;

    #[test]
    fn events_round_trip_as_cloud_events() {
        let record = EventRecord {
            id: Uuid::now_v7(),
            position: 7,
            tenant: TenantId::parse("acme").unwrap(),
            case_id: Uuid::now_v7(),
            revision: 3,
            event_type: "casewire.case.assigned.v1".into(),
            data: serde_json::json!({"assignee": "bob", "previous": null}),
            time: Utc::now(),
            actor: "alice".into(),
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
        };
        let json = event_to_json(&record);
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "casewire.case.assigned.v1");
        assert_eq!(json["subject"], record.case_id.to_string());
        assert_eq!(json["revision"], 3);
        assert_eq!(json["causationid"], record.command_id.to_string());
        let back = event_from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!(back.id, record.id);
        assert_eq!(back.data, record.data);
        assert_eq!(back.revision, 3);
        assert_eq!(back.position, 7);
        assert_eq!(back.time.timestamp_micros(), record.time.timestamp_micros());
    }

    #[test]
    fn commands_and_outcomes_round_trip() {
        let env = CommandEnvelope {
            command_id: Uuid::now_v7(),
            case_id: Uuid::now_v7(),
            tenant: TenantId::parse("acme").unwrap(),
            actor: "alice".into(),
            correlation_id: Uuid::now_v7(),
            case_key: Some(CaseKey::parse("CMP-000001").unwrap()),
            issued_at: Utc::now(),
            command: CaseCommand::Assign(AssignCase {
                assignee: UserRef::parse("bob").unwrap(),
            }),
        };
        let back = CommandEnvelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back.command, env.command);
        assert_eq!(back.case_key, env.case_key);
        let outcome = CommandOutcome {
            command_id: env.command_id,
            case_id: env.case_id,
            tenant: TenantId::parse("acme").unwrap(),
            status: OutcomeStatus::Rejected,
            revision: None,
            error: Some(Rejection::new(casewire_domain::ErrorCode::NoChange, "assigned already")),
        };
        assert_eq!(CommandOutcome::from_json(&outcome.to_json()).unwrap(), outcome);
    }
}
