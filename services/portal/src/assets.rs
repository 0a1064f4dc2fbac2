//! The portal's own script, embedded in the binary and served under a
//! name that carries its content hash, so it can be cached forever and a
//! new build is fetched at once.

use std::sync::LazyLock;

use actix_web::web::Path;
use actix_web::{HttpResponse, get};
use sha2::{Digest, Sha256};

/// Drag and drop on the board, with the snap back on a refusal.
pub const BOARD_JS: &str = include_str!("../assets/board.js");

/// `/assets/board.<hash>.js`.
pub static BOARD_JS_PATH: LazyLock<String> = LazyLock::new(|| {
    let hash = Sha256::digest(BOARD_JS.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/assets/board.{short}.js")
});

#[get("/assets/{name}")]
pub async fn asset(name: Path<String>) -> HttpResponse {
    if format!("/assets/{name}") != *BOARD_JS_PATH {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .body(BOARD_JS)
}
