//! `GET /api/v1/stats/cases`: figures for a dashboard (open cases by stage,
//! queue and priority, opened and resolved per day, ageing), over the
//! cases the caller may see: the list's policy filter, page by page.

use actix_web::web::{Data, Query};
use actix_web::{HttpResponse, get};
use casewire_application::stats::{CaseStats, Tally};
use casewire_ports::{CaseQuery, SortKey};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::authz;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The most cases one answer counts; past it the figures cover the most
/// recently updated ones and say `truncated`.
pub const MAX_CASES: usize = 20_000;
/// Cases read per page of the read model.
const PAGE: usize = 500;

/// What to count.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Only cases of this definition.
    pub definition: Option<String>,
    /// Days in the opened-and-resolved series, ending today (UTC): 1 to
    /// 366, default 30.
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

/// Figures over the cases you may see (at most 20,000, the most recently
/// updated; `truncated` says when there were more).
#[utoipa::path(
    get, path = "/api/v1/stats/cases", tag = "cases", params(StatsParams),
    responses((status = 200, body = CaseStats), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/stats/cases")]
pub async fn case_stats(
    state: Data<AppState>,
    auth: Auth,
    params: Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let days = p.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_parameter("days must be between 1 and 366")
            .with_details(serde_json::json!({"field": "days"})));
    }
    let visible = authz::filter(&state, &auth).await?;
    let mut query = CaseQuery {
        definition: p.definition,
        visible: Some(visible.clauses),
        sort: SortKey::UpdatedAt,
        descending: true,
        limit: PAGE,
        ..CaseQuery::default()
    };
    let mut tally = Tally::new(chrono::Utc::now(), days);
    let mut counted = 0;
    let truncated = loop {
        let page = state.platform.reads.list_cases(&visible.tenant, &query).await?;
        for c in &page.items {
            tally.add(c);
        }
        counted += page.items.len();
        match page.next_cursor {
            Some(_) if counted >= MAX_CASES => break true,
            Some(next) => {
                query.after = casewire_ports::Cursor::decode(&next);
                if query.after.is_none() {
                    break false;
                }
            }
            None => break false,
        }
    };
    Ok(HttpResponse::Ok().json(tally.finish(truncated)))
}
