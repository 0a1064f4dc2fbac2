//! The portal's own scripts, embedded in the binary and served under names
//! that carry their content hash, so they can be cached forever and a new
//! build is fetched at once.

use std::sync::LazyLock;

use actix_web::web::Path;
use actix_web::{HttpResponse, get};
use sha2::{Digest, Sha256};

/// Drag and drop on the board, with the snap back on a refusal.
pub const BOARD_JS: &str = include_str!("../assets/board.js");
/// Live updates of the page's regions.
pub const LIVE_JS: &str = include_str!("../assets/live.js");
/// Uploads with progress, and files dropped on the form.
pub const UPLOAD_JS: &str = include_str!("../assets/upload.js");

fn hashed(stem: &str, body: &str) -> String {
    let hash = Sha256::digest(body.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/assets/{stem}.{short}.js")
}

/// `/assets/board.<hash>.js`.
pub static BOARD_JS_PATH: LazyLock<String> = LazyLock::new(|| hashed("board", BOARD_JS));
/// `/assets/live.<hash>.js`.
pub static LIVE_JS_PATH: LazyLock<String> = LazyLock::new(|| hashed("live", LIVE_JS));
/// `/assets/upload.<hash>.js`.
pub static UPLOAD_JS_PATH: LazyLock<String> = LazyLock::new(|| hashed("upload", UPLOAD_JS));

#[get("/assets/{name}")]
pub async fn asset(name: Path<String>) -> HttpResponse {
    let path = format!("/assets/{name}");
    let body = if path == *BOARD_JS_PATH {
        BOARD_JS
    } else if path == *LIVE_JS_PATH {
        LIVE_JS
    } else if path == *UPLOAD_JS_PATH {
        UPLOAD_JS
    } else {
        return HttpResponse::NotFound().finish();
    };
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .body(body)
}
