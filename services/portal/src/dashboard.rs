//! The dashboard: open cases by stage, queue and priority, opened and
//! resolved per day, and how old the open ones are, from the API's
//! figures (`/api/v1/stats/cases`, which counts only the cases this person
//! may see). Charts are SVG drawn here, no script; each has its figures as
//! a table for screen readers and keyboard users.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse, get};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::Portal;
use crate::pages::{layout, page, problem, to_login};

const BAR_W: f64 = 320.0;
const ROW_H: f64 = 22.0;
const LABEL_W: f64 = 230.0;
/// Longer labels are cut (the table under the chart has them whole).
const LABEL_CHARS: usize = 34;

/// Which figures.
#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    pub definition: Option<String>,
    pub days: Option<u32>,
}

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
    format!("{cut}…")
}

fn count(v: &Value) -> u64 {
    v["count"].as_u64().unwrap_or_default()
}

/// A horizontal bar per label, and the same figures as a table.
fn bars(id: &str, title: &str, items: &[Value]) -> Markup {
    let max = items.iter().map(count).max().unwrap_or(0).max(1) as f64;
    let height = ROW_H * items.len().max(1) as f64;
    html! {
        section.chart aria-labelledby={ (id) "-h" } {
            h2 #{ (id) "-h" } { (title) }
            @if items.is_empty() { p.muted { "Nothing open." } }
            @else {
                svg role="img" aria-labelledby={ (id) "-h" } viewBox={ "0 0 " (LABEL_W + BAR_W + 50.0) " " (height) } width="100%" {
                    @for (i, item) in items.iter().enumerate() {
                        @let y = i as f64 * ROW_H;
                        @let w = (count(item) as f64 / max * BAR_W).max(1.0);
                        text.label x=(LABEL_W - 6.0) y=(y + 15.0) text-anchor="end" { (short(item["label"].as_str().unwrap_or_default())) }
                        rect.bar x=(LABEL_W) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW_H - 6.0) rx="2" {}
                        text.value x=(LABEL_W + w + 4.0) y=(y + 15.0) { (count(item)) }
                    }
                }
                details { summary { "Figures" }
                    table { thead { tr { th scope="col" { "What" } th scope="col" { "Cases" } } }
                        tbody { @for item in items { tr { td { (item["label"].as_str().unwrap_or_default()) } td { (count(item)) } } } } }
                }
            }
        }
    }
}

/// Opened and resolved per day: two lines over the days.
fn series(days: &[Value]) -> Markup {
    let (w, h, pad) = (640.0_f64, 180.0_f64, 28.0_f64);
    let get = |d: &Value, k: &str| d[k].as_u64().unwrap_or_default();
    let max = days
        .iter()
        .map(|d| get(d, "created").max(get(d, "resolved")))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = if days.len() > 1 {
        (w - 2.0 * pad) / (days.len() - 1) as f64
    } else {
        0.0
    };
    let line = |k: &str| -> String {
        days.iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{:.1},{:.1}",
                    pad + i as f64 * step,
                    h - pad - get(d, k) as f64 / max * (h - 2.0 * pad)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let first = days.first().and_then(|d| d["date"].as_str()).unwrap_or_default();
    let last = days.last().and_then(|d| d["date"].as_str()).unwrap_or_default();
    html! {
        section.chart aria-labelledby="days-h" {
            h2 #days-h { "Opened and resolved per day" }
            p.legend { span.key.opened { "■" } " opened  " span.key.resolved { "■" } " resolved" }
            svg role="img" aria-labelledby="days-h" viewBox={ "0 0 " (w) " " (h) } width="100%" {
                line.axis x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) {}
                text.label x=(pad) y=(h - 8.0) { (first) }
                text.label x=(w - pad) y=(h - 8.0) text-anchor="end" { (last) }
                text.label x="4" y=(pad) { (max as u64) }
                polyline.opened points=(line("created")) fill="none" {}
                polyline.resolved points=(line("resolved")) fill="none" {}
            }
            details { summary { "Figures" }
                table { thead { tr { th scope="col" { "Day" } th scope="col" { "Opened" } th scope="col" { "Resolved" } } }
                    tbody { @for d in days { tr { td { (d["date"].as_str().unwrap_or_default()) } td { (get(d, "created")) } td { (get(d, "resolved")) } } } } }
            }
        }
    }
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

/// `/dashboard`.
#[get("/dashboard")]
pub async fn dashboard(portal: Data<Portal>, req: HttpRequest, q: Query<DashboardQuery>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let mut path = format!("/api/v1/stats/cases?days={days}");
    if let Some(d) = q.definition.as_deref().filter(|d| !d.is_empty()) {
        path.push_str(&format!("&definition={}", crate::api::enc(d)));
    }
    let stats = match crate::api::get_ok(&portal, &s, &path).await {
        Ok(v) => v,
        Err((status, why)) => return problem(status, &why),
    };
    page(
        StatusCode::OK,
        layout(
            "Dashboard",
            Some(&s),
            html! {
                h1 { "Dashboard" }
                div #dashboard data-region {
                    p.tiles {
                        span.tile { strong { (stats["open"].as_u64().unwrap_or_default()) } " open" }
                        span.tile { strong { (stats["total"].as_u64().unwrap_or_default()) } " in all" }
                        @if stats["truncated"] == true { span.muted { " (the most recently updated only)" } }
                    }
                    div.charts {
                        (bars("stage", "Open by stage", &list(&stats, "openByStage")))
                        (bars("queue", "Open by queue", &list(&stats, "openByQueue")))
                        (bars("priority", "Open by priority", &list(&stats, "openByPriority")))
                        (bars("ageing", "Age of open cases", &list(&stats, "ageing")))
                    }
                    (series(&list(&stats, "days")))
                }
            },
        ),
    )
}
