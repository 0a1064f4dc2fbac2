//! The SLA schedule on the read store's case rows: the scheduler's columns
//! (`sla_*`), which the projector's upsert never names, so a new case
//! state keeps them. Times are stored as `sortable_time` text, so string
//! comparison is time comparison.

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use casewire_ports::projection::sortable_time;
use casewire_ports::{SlaClaim, SlaEntry, SlaSchedule, SlaState, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::db::map_err;
use crate::read_store::SqliteReadStore;

/// A stored time back.
pub(crate) fn time(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("SLA time {t}: {e}")))
    })
    .transpose()
}

fn text(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(sortable_time)
}

/// The list's SLA filter, as [`SlaState::of`] decides it.
pub(crate) fn push_state(sql: &mut String, args: &mut Vec<SqlValue>, state: SlaState, now: DateTime<Utc>) {
    let now = sortable_time(now);
    // A missing time compares as NULL: COALESCE makes it "not reached".
    let breached = "(c.sla_breached = 1 OR COALESCE(c.sla_due_at <= ?, 0))";
    let at_risk = "COALESCE(c.sla_warn_at <= ?, 0)";
    match state {
        SlaState::Breached => {
            sql.push_str(&format!(" AND {breached}"));
            args.push(now.into());
        }
        SlaState::AtRisk => {
            sql.push_str(&format!(" AND NOT {breached} AND {at_risk}"));
            args.extend([now.clone().into(), now.into()]);
        }
        SlaState::Ok => {
            sql.push_str(&format!(" AND NOT {breached} AND NOT {at_risk}"));
            args.extend([now.clone().into(), now.into()]);
        }
    }
}

fn claims(rows: Vec<(String, String)>) -> Result<Vec<SlaClaim>, StoreError> {
    rows.into_iter()
        .map(|(tenant, id)| {
            Ok(SlaClaim {
                tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                case_id: id.parse().map_err(|_| StoreError::Corrupt(format!("case id {id}")))?,
            })
        })
        .collect()
}

#[async_trait]
impl SlaSchedule for SqliteReadStore {
    async fn put_sla(&self, tenant: &TenantId, case_id: Uuid, entry: &SlaEntry) -> Result<bool, StoreError> {
        let (tenant, e) = (tenant.to_string(), entry.clone());
        self.db
            .write(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE cases SET sla_next_at = ?3, sla_due_at = ?4, sla_warn_at = ?5, sla_breached = ?6,
                                sla_calendar = ?7, sla_claimed_until = NULL
                         WHERE tenant = ?1 AND id = ?2",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            tenant,
                            case_id.to_string(),
                            text(e.next_at),
                            text(e.due_at),
                            text(e.warn_at),
                            e.breached,
                            e.calendar
                        ])
                    })
                    .map_err(map_err)?;
                Ok(n > 0)
            })
            .await
    }

    async fn get_sla(&self, tenant: &TenantId, case_id: Uuid) -> Result<Option<SlaEntry>, StoreError> {
        type Row = (Option<String>, Option<String>, Option<String>, bool, Option<String>);
        let tenant = tenant.to_string();
        let row: Option<Row> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT sla_next_at, sla_due_at, sla_warn_at, sla_breached, sla_calendar
                     FROM cases WHERE tenant = ?1 AND id = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![tenant, case_id.to_string()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(map_err)
            })
            .await?;
        row.map(|(next, due, warn, breached, calendar)| {
            Ok(SlaEntry {
                next_at: time(next)?,
                due_at: time(due)?,
                warn_at: time(warn)?,
                breached,
                calendar,
            })
        })
        .transpose()
    }

    async fn claim_sla(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SlaClaim>, StoreError> {
        let (now, until) = (sortable_time(now), sortable_time(until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement, in the one writer: no second scheduler can take
        // a row between the look and the claim.
        let rows = self
            .db
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE cases SET sla_claimed_until = ?2
                         WHERE seq IN (SELECT seq FROM cases
                                       WHERE sla_next_at IS NOT NULL AND sla_next_at <= ?1
                                         AND (sla_claimed_until IS NULL OR sla_claimed_until <= ?1)
                                       ORDER BY sla_next_at LIMIT ?3)
                         RETURNING tenant, id, sla_next_at",
                    )
                    .map_err(map_err)?;
                let mut rows: Vec<(String, String, String)> = stmt
                    .query_map(params![now, until, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)?;
                // RETURNING does not keep the subquery's order.
                rows.sort_by(|a, b| a.2.cmp(&b.2));
                Ok(rows.into_iter().map(|(t, id, _)| (t, id)).collect())
            })
            .await?;
        claims(rows)
    }

    async fn sla_calendars(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .read(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT DISTINCT sla_calendar FROM cases WHERE sla_calendar IS NOT NULL")
                    .map_err(map_err)?;
                stmt.query_map([], |r| r.get(0))
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)
            })
            .await
    }

    async fn sla_cases_on(&self, calendar: &str, limit: usize) -> Result<Vec<SlaClaim>, StoreError> {
        let calendar = calendar.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT tenant, id FROM cases WHERE sla_calendar = ?1 LIMIT ?2")
                    .map_err(map_err)?;
                stmt.query_map(params![calendar, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map_err)?
                    .collect::<Result<_, _>>()
                    .map_err(map_err)
            })
            .await?;
        claims(rows)
    }
}
