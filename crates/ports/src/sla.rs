//! The SLA schedule port: on each case's projected row, when the scheduler
//! looks at it next (a durable timer, claimed by one scheduler at a time),
//! and the clocks' due and warning times that the case list filters and
//! sorts by. Written by the SLA scheduler, which computes them from the
//! case's events ([`casewire_domain::sla::schedule`]); on the case's row
//! so that a list query filters and sorts without a join, and so that a
//! projection rebuild drops them with the rows (replay recomputes them).

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::StoreError;

/// A case's SLA state on its row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaEntry {
    /// When the scheduler looks at the case again: the next warning or
    /// goal of a running clock, or a threshold it could not record yet.
    pub next_at: Option<DateTime<Utc>>,
    /// The earliest due time of a running clock.
    pub due_at: Option<DateTime<Utc>>,
    /// The earliest warning time of a running clock.
    pub warn_at: Option<DateTime<Utc>>,
    /// A clock not yet met is breached.
    pub breached: bool,
    /// The calendar the times were computed on, as [`calendar_key`]: a
    /// newer version of it means they must be computed again.
    pub calendar: Option<String>,
}

/// The calendar key of an entry: tenant, calendar id and version.
pub fn calendar_key(tenant: &TenantId, calendar: &str, version: u32) -> String {
    format!("{tenant} {calendar}@{version}")
}

/// The parts of a [`calendar_key`].
pub fn parse_calendar_key(key: &str) -> Option<(TenantId, String, u32)> {
    let (tenant, rest) = key.split_once(' ')?;
    let (calendar, version) = rest.rsplit_once('@')?;
    Some((
        TenantId::parse(tenant).ok()?,
        calendar.to_owned(),
        version.parse().ok()?,
    ))
}

/// How the case list sees a case's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SlaState {
    /// A clock not yet met is past its goal.
    Breached,
    /// Not breached, and a running clock is past its warning time.
    AtRisk,
    /// Neither (no clock, or all in time).
    Ok,
}

impl SlaState {
    /// The state of an entry at `now`: the stored times decide, so the
    /// list is right even before the scheduler records a threshold.
    pub fn of(entry: &SlaEntry, now: DateTime<Utc>) -> SlaState {
        if entry.breached || entry.due_at.is_some_and(|d| d <= now) {
            SlaState::Breached
        } else if entry.warn_at.is_some_and(|w| w <= now) {
            SlaState::AtRisk
        } else {
            SlaState::Ok
        }
    }

    /// `breached`, `at-risk` or `ok`.
    pub fn parse(text: &str) -> Option<SlaState> {
        match text {
            "breached" => Some(SlaState::Breached),
            "at-risk" => Some(SlaState::AtRisk),
            "ok" => Some(SlaState::Ok),
            _ => None,
        }
    }
}

/// A case the scheduler claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaClaim {
    pub tenant: TenantId,
    pub case_id: Uuid,
}

/// Where the SLA schedule is kept: the case rows of the read store.
#[async_trait]
pub trait SlaSchedule: Send + Sync + 'static {
    /// Sets a case's entry and releases any claim on it; false when the
    /// case has no row yet (the projector is behind: try again later).
    async fn put_sla(&self, tenant: &TenantId, case_id: Uuid, entry: &SlaEntry) -> Result<bool, StoreError>;
    /// A case's entry (the default when it has none; `None` without a row).
    async fn get_sla(&self, tenant: &TenantId, case_id: Uuid) -> Result<Option<SlaEntry>, StoreError>;
    /// Claims up to `limit` cases whose `next_at` is at or before `now` and
    /// that no one holds, earliest first: each is held until `until`, so a
    /// second scheduler passes it by, and a scheduler that dies holding it
    /// only delays it to `until`.
    async fn claim_sla(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SlaClaim>, StoreError>;
    /// The calendar keys that entries are computed on.
    async fn sla_calendars(&self) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` cases whose entry was computed on `calendar` (a key).
    async fn sla_cases_on(&self, calendar: &str, limit: usize) -> Result<Vec<SlaClaim>, StoreError>;
}
