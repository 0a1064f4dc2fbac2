//! Attachments: upload to a case (the browser's multipart form streamed to
//! the storage API as it is, then attached), and download or preview
//! through the portal with the person's token, so the API decides who
//! gets which bytes.
//!
//! Only raster images and PDFs are shown inline, and only as the API
//! recorded them (it checks that the bytes match the type); everything
//! else is a download, and every file answer carries a sandboxing CSP, so
//! an uploaded HTML or SVG never runs on the portal's origin.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path, Payload, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Portal;
use crate::api::Refused;
use crate::login::FormDenied;
use crate::pages::{problem, to_login};
use crate::session::Session;

/// Types a browser may show in the page; their bytes are checked by the API.
const INLINE: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

/// Whether a file of `content_type` is previewed in the page.
pub fn previewable(content_type: &str) -> bool {
    INLINE.contains(&content_type)
}

/// An image the page may show as `<img>`.
pub fn is_image(content_type: &str) -> bool {
    previewable(content_type) && content_type.starts_with("image/")
}

/// The CSRF token rides in the query: the body is the file, passed on as
/// it came.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    pub csrf: String,
}

/// A JSON answer for the upload script, a page or a redirect otherwise.
fn answer(req: &HttpRequest, case: &str, refused: Option<Refused>) -> HttpResponse {
    let wants_json = req
        .headers()
        .get("Accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    match (refused, wants_json) {
        (None, true) => HttpResponse::Ok().json(json!({"ok": true})),
        (None, false) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/cases/{}", crate::api::enc(case))))
            .finish(),
        (Some(refused), true) => HttpResponse::build(refused.status).json(refused.body),
        (Some(refused), false) => problem(refused.status, &refused.reason()),
    }
}

/// Streams the request body to `POST /api/v1/files`: the file's record.
async fn store(portal: &Portal, s: &Session, req: &HttpRequest, mut body: Payload) -> Result<Value, Refused> {
    // actix's payload stays on its thread; a channel carries it to the
    // HTTP client, chunk by chunk, so a large file is never held whole.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                break;
            }
        }
    });
    let content_type = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let request = crate::api::to_api(portal, s, reqwest::Method::POST, "/api/v1/files")
        .header("Content-Type", content_type)
        .timeout(std::time::Duration::from_secs(3600))
        .body(reqwest::Body::wrap_stream(rx));
    let sent = crate::api::send(request).await;
    crate::api::outcome(sent)
}

/// Upload and attach a file to a case.
#[post("/cases/{id}/attachments")]
pub async fn upload(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    q: Query<UploadQuery>,
    body: Payload,
) -> HttpResponse {
    let s = match crate::login::form_session(&portal, &req, Some(&q.csrf)).await {
        Ok(s) => s,
        Err(FormDenied::SignedOut) => return to_login(),
        Err(FormDenied::Stale) => {
            let body = json!({"code": "CW-FORBIDDEN", "message": crate::login::STALE_FORM});
            let stale = Refused {
                status: StatusCode::FORBIDDEN,
                body,
            };
            return answer(&req, &id, Some(stale));
        }
    };
    let file = match store(&portal, &s, &req, body).await {
        Ok(file) => file,
        Err(refused) => return answer(&req, &id, Some(refused)),
    };
    let path = format!("/api/v1/cases/{}/attachments", crate::api::enc(&id));
    let sent = crate::api::post(&portal, &s, &path, &json!({"fileId": file["id"]})).await;
    answer(&req, &id, crate::api::outcome(sent).err())
}

/// `?inline`: show it in the page (for the types that may be).
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    #[serde(default)]
    pub inline: Option<String>,
}

/// A file's bytes, streamed from the API.
#[get("/files/{id}")]
pub async fn download(portal: Data<Portal>, req: HttpRequest, id: Path<String>, q: Query<FileQuery>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let path = format!("/api/v1/files/{}", crate::api::enc(&id));
    let sent = crate::api::to_api(&portal, &s, reqwest::Method::GET, &path)
        .timeout(std::time::Duration::from_secs(3600))
        .send()
        .await;
    let r = match sent {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            return problem(status, body["message"].as_str().unwrap_or("No such file."));
        }
        Err(e) => return problem(StatusCode::BAD_GATEWAY, &format!("The API can not be reached: {e}")),
    };
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type").unwrap_or_else(|| "application/octet-stream".into());
    let mut disposition = header("content-disposition").unwrap_or_else(|| "attachment".into());
    let inline = q.inline.is_some() && previewable(&content_type);
    if inline {
        disposition = disposition.replacen("attachment", "inline", 1);
    }
    let mut res = HttpResponse::Ok();
    res.content_type(content_type.clone())
        .insert_header(("Content-Disposition", disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "private, no-store"));
    // Chromium's PDF viewer does not run in a sandboxed document; a PDF
    // is inline only as what the API checked it to be.
    if !(inline && content_type == "application/pdf") {
        res.insert_header(("Content-Security-Policy", "default-src 'none'; img-src 'self'; sandbox"));
    }
    if let Some(length) = header("content-length").and_then(|l| l.parse::<u64>().ok()) {
        res.no_chunking(length);
    }
    res.streaming(r.bytes_stream())
}
