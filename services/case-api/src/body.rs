//! Request bodies read with the configured size limit, failing as API
//! errors (413 `CW-PAYLOAD-TOO-LARGE`) rather than actix's plain text.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use casewire_domain::ErrorCode;

use crate::error::ApiError;

/// The raw body.
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = Bytes::from_request(req, payload);
        Box::pin(async move {
            fut.await.map(Body).map_err(|e| {
                let status = e.as_response_error().status_code();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "the request body is larger than the configured limit",
                    )
                } else {
                    ApiError::bad_parameter(format!("unreadable body: {e}"))
                }
            })
        })
    }
}
