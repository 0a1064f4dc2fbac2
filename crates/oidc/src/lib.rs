//! Identity: verifying OpenID Connect bearer tokens against an issuer's
//! JWKS, mapping Keycloak-shaped claims to a [`Principal`], and the built-in
//! dev issuer of the embedded runtime.
//!
//! # Layout
//! - [`principal`]: who is calling — subject, name, roles, groups, tenant.
//! - [`verifier`]: `JwksVerifier` — discovery, a per-issuer key cache
//!   refreshed (rate-limited) on an unknown `kid`, RS256/ES256, iss/aud/exp/nbf.
//! - [`dev`]: `DevIssuer` — an RSA key kept in the data dir, demo users, and
//!   signed tokens. Refuses to exist outside dev mode (the runtime checks).

pub mod dev;
pub mod grants;
pub mod principal;
pub mod verifier;

pub use dev::{DemoUser, DevIssuer};
pub use principal::{ClaimMapping, ClaimsError, Principal};
pub use verifier::{AuthError, JwksVerifier, TrustedIssuer};
