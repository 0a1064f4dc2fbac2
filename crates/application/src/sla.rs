//! A case's SLA clocks at a time: what the API shows and what the SLA
//! scheduler acts on, computed one way for both (the domain's pure
//! [`case_clocks`] on the case's events, its definition and the newest
//! version of its calendar).

use casewire_domain::CaseDefinition;
use casewire_domain::calendar::Calendar;
use casewire_domain::sla::{Clock, case_clocks};
use casewire_domain::types::TenantId;
use casewire_ports::sla::calendar_key;
use casewire_ports::{EventStore, ReadStore, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A case's clocks and the calendar they count on.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseClocks {
    pub clocks: Vec<Clock>,
    /// The calendar the definition names (`None`: every hour counts).
    pub calendar: Option<String>,
    /// The version used; `None` when the definition names none or the
    /// tenant does not have it (then every hour counts until imported).
    pub calendar_version: Option<u32>,
    /// [`calendar_key`] of what was used (version 0 for a missing one, so
    /// its import makes the scheduler compute again).
    pub calendar_key: Option<String>,
}

impl CaseClocks {
    /// The definition names a calendar the tenant does not have.
    pub fn calendar_missing(&self) -> bool {
        self.calendar.is_some() && self.calendar_version.is_none()
    }
}

/// The clocks of case `case_id` at `now`.
pub async fn clocks_at(
    reads: &dyn ReadStore,
    events: &dyn EventStore,
    def: &CaseDefinition,
    tenant: &TenantId,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<CaseClocks, StoreError> {
    let stored = match &def.sla.calendar {
        Some(id) => reads.get_calendar(tenant, id, None).await?,
        None => None,
    };
    // Imported calendars compiled when they were imported; one that no
    // longer does was changed behind the store's back.
    let compiled = match &stored {
        Some(c) => c
            .compile()
            .map_err(|e| StoreError::Corrupt(format!("calendar {}: {e}", c.id)))?,
        None => Calendar::always(),
    };
    let records = events.load(tenant, case_id).await?;
    let decoded: Vec<_> = records
        .iter()
        .filter_map(|r| r.case_event().ok().map(|e| (r.time, e)))
        .collect();
    let clocks = case_clocks(def, decoded.iter().map(|(t, e)| (*t, e)), &compiled, now);
    let calendar_key = def
        .sla
        .calendar
        .as_ref()
        .map(|id| calendar_key(tenant, id, stored.as_ref().map_or(0, |c| c.version)));
    Ok(CaseClocks {
        clocks,
        calendar: def.sla.calendar.clone(),
        calendar_version: stored.map(|c| c.version),
        calendar_key,
    })
}
