//! The SLA schedule on the case documents: the scheduler's fields (`sla*`)
//! sit next to the projector's, which the projector's `$set` never names,
//! so a new case state keeps them. Times are `sortable_time` strings like
//! `createdAt`, so a string comparison is a time comparison, and a missing
//! or null time never matches `$lte` (MongoDB compares strings only with
//! strings), which makes it "not reached".

use std::collections::HashSet;

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use casewire_ports::projection::{NO_DUE_TIME, sortable_time};
use casewire_ports::{SlaClaim, SlaEntry, SlaSchedule, SlaState, StoreError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use uuid::Uuid;

use crate::read_store::{MongoReadStore, case_id, parse_time};
use crate::{Bounded as _, corrupt, i64_of};

/// When the scheduler looks at the case next.
const NEXT_AT: &str = "slaNextAt";
/// The earliest due time of a running clock.
pub(crate) const DUE_AT: &str = "slaDueAt";
/// The list's sort value: `sortable_time` of the due time, or
/// [`NO_DUE_TIME`], which sorts after every time. Kept apart from `slaDueAt`
/// because a missing field would sort first, not last.
pub(crate) const DUE: &str = "slaDue";
const WARN_AT: &str = "slaWarnAt";
const BREACHED: &str = "slaBreached";
const CALENDAR: &str = "slaCalendar";
/// Until when a scheduler holds the case (null: no one does).
const CLAIMED_UNTIL: &str = "slaClaimedUntil";

/// What a newly inserted case document starts with (`$setOnInsert` of the
/// projector's upsert): no due time, so the due-time sort puts it last.
pub(crate) fn on_insert() -> Document {
    doc! {DUE: NO_DUE_TIME}
}

fn time_value(t: Option<DateTime<Utc>>) -> Bson {
    t.map_or(Bson::Null, |t| Bson::String(sortable_time(t)))
}

/// A stored time back; a missing field or null is no time.
fn time_field(d: &Document, field: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(t)) => parse_time(t).map(Some),
        Some(other) => Err(corrupt(format!("{field} is {other}, not a time"))),
    }
}

/// The earliest due time of a case document (for the list's summaries,
/// whose stored JSON never has it: the projector does not know it).
pub(crate) fn due_at(d: &Document) -> Result<Option<DateTime<Utc>>, StoreError> {
    time_field(d, DUE_AT)
}

/// An entry as the fields `put_sla` sets; setting it ends any claim.
fn entry_fields(e: &SlaEntry) -> Document {
    doc! {
        NEXT_AT: time_value(e.next_at),
        DUE_AT: time_value(e.due_at),
        WARN_AT: time_value(e.warn_at),
        BREACHED: e.breached,
        CALENDAR: e.calendar.as_deref().map_or(Bson::Null, |c| Bson::String(c.to_owned())),
        DUE: e.due_at.map_or_else(|| NO_DUE_TIME.to_owned(), sortable_time),
        CLAIMED_UNTIL: Bson::Null,
    }
}

/// The entry of a case document; one whose fields were never set (a new
/// case, or one projected before they existed) has the default entry.
fn entry_of(d: &Document) -> Result<SlaEntry, StoreError> {
    Ok(SlaEntry {
        next_at: time_field(d, NEXT_AT)?,
        due_at: time_field(d, DUE_AT)?,
        warn_at: time_field(d, WARN_AT)?,
        breached: d.get_bool(BREACHED).unwrap_or(false),
        calendar: d.get_str(CALENDAR).ok().map(str::to_owned),
    })
}

fn claim_of(d: &Document) -> Result<SlaClaim, StoreError> {
    let id = d.get_str("id").map_err(corrupt)?;
    Ok(SlaClaim {
        tenant: TenantId::parse(d.get_str("tenant").map_err(corrupt)?).map_err(corrupt)?,
        case_id: id.parse().map_err(|_| StoreError::Corrupt(format!("case id {id}")))?,
    })
}

/// The list's filter for cases in `state` at `now`, as [`SlaState::of`]
/// decides it.
pub(crate) fn state_filter(state: SlaState, now: DateTime<Utc>) -> Document {
    let now = sortable_time(now);
    let breached = || vec![doc! {BREACHED: true}, doc! {DUE_AT: {"$lte": &now}}];
    match state {
        SlaState::Breached => doc! {"$or": breached()},
        // `$nor` also admits documents without the fields: no clock is ok.
        SlaState::AtRisk => doc! {"$nor": breached(), WARN_AT: {"$lte": &now}},
        SlaState::Ok => {
            let mut neither = breached();
            neither.push(doc! {WARN_AT: {"$lte": &now}});
            doc! {"$nor": neither}
        }
    }
}

#[async_trait]
impl SlaSchedule for MongoReadStore {
    /// No upsert: a case without a document is one the projector has not
    /// written yet, and an entry must not create a half case.
    async fn put_sla(&self, tenant: &TenantId, id: Uuid, entry: &SlaEntry) -> Result<bool, StoreError> {
        let r = self
            .cases
            .update_one(doc! {"_id": case_id(tenant, id)}, doc! {"$set": entry_fields(entry)})
            .bounded(self.timeout)
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn get_sla(&self, tenant: &TenantId, id: Uuid) -> Result<Option<SlaEntry>, StoreError> {
        let found = self
            .cases
            .find_one(doc! {"_id": case_id(tenant, id)})
            .projection(doc! {NEXT_AT: 1, DUE_AT: 1, WARN_AT: 1, BREACHED: 1, CALENDAR: 1})
            .bounded(self.timeout)
            .await?;
        found.as_ref().map(entry_of).transpose()
    }

    /// One `findOneAndUpdate` per case: each claim is atomic on its
    /// document, so two schedulers never both take a case, and the sort
    /// on the `slaNextAt` index hands out the earliest first.
    async fn claim_sla(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SlaClaim>, StoreError> {
        let now = sortable_time(now);
        let filter = doc! {
            NEXT_AT: {"$lte": &now},
            // `null` matches a missing field too.
            "$or": [{CLAIMED_UNTIL: Bson::Null}, {CLAIMED_UNTIL: {"$lte": &now}}],
        };
        let mut claimed = Vec::new();
        let mut seen = HashSet::new();
        while claimed.len() < limit {
            let Some(d) = self
                .cases
                .find_one_and_update(filter.clone(), doc! {"$set": {CLAIMED_UNTIL: sortable_time(until)}})
                .sort(doc! {NEXT_AT: 1})
                .projection(doc! {"tenant": 1, "id": 1})
                .bounded(self.timeout)
                .await?
            else {
                break;
            };
            // With `until` at or before `now` a claim holds nothing and the
            // same case would come back at once: it is claimed already.
            if !seen.insert(d.get_str("_id").map_err(corrupt)?.to_owned()) {
                break;
            }
            claimed.push(claim_of(&d)?);
        }
        Ok(claimed)
    }

    async fn sla_calendars(&self) -> Result<Vec<String>, StoreError> {
        let keys = self
            .cases
            .distinct(CALENDAR, doc! {CALENDAR: {"$ne": Bson::Null}})
            .bounded(self.timeout)
            .await?;
        Ok(keys.into_iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
    }

    async fn sla_cases_on(&self, calendar: &str, limit: usize) -> Result<Vec<SlaClaim>, StoreError> {
        // A limit of 0 means "no limit" to MongoDB.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs: Vec<Document> = self
            .cases
            .find(doc! {CALENDAR: calendar})
            .limit(i64_of(limit as u64))
            .projection(doc! {"tenant": 1, "id": 1})
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        docs.iter().map(claim_of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_entry_round_trips_through_its_fields_and_sorts_without_a_due_time_last() {
        let at = |m| Utc.with_ymd_and_hms(2026, 12, 7, 9, m, 0).single().unwrap_or_default();
        let entry = SlaEntry {
            next_at: Some(at(1)),
            due_at: Some(at(2)),
            warn_at: None,
            breached: true,
            calendar: Some("t office@1".into()),
        };
        let fields = entry_fields(&entry);
        assert_eq!(entry_of(&fields).ok(), Some(entry));
        assert_eq!(fields.get_str(DUE).ok(), Some(sortable_time(at(2)).as_str()));
        assert!(sortable_time(at(59)).as_str() < NO_DUE_TIME);
        assert_eq!(entry_of(&doc! {"title": "x"}).ok(), Some(SlaEntry::default()));
        assert_eq!(entry_fields(&SlaEntry::default()).get_str(DUE).ok(), Some(NO_DUE_TIME));
    }
}
