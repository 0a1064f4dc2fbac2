//! Webhooks as the Standard Webhooks spec has them: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, secrets `whsec_<base64>`, several signatures
//! (space-separated) while a secret is rotated. And the one check every
//! target passes before each send: no private, loopback or link-local
//! address unless an operator allowed them (SSRF).

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret or a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a secret is whsec_ and base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("the URL is not an http(s) URL with a host: {0}")]
    BadUrl(String),
    #[error(
        "{host} resolves to {ip}, a private, loopback or link-local address; an operator may allow such targets (notify.allow_private_targets)"
    )]
    PrivateTarget { host: String, ip: IpAddr },
    #[error("{0} does not resolve")]
    Unresolvable(String),
}

/// A fresh secret: 32 random bytes.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or(WebhookError::BadSecret)?;
    let key = STANDARD.decode(b64).map_err(|_| WebhookError::BadSecret)?;
    if !(24..=64).contains(&key.len()) {
        return Err(WebhookError::BadSecret);
    }
    Ok(key)
}

/// `v1,<signature>` of one message under one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| WebhookError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let signatures: Result<Vec<String>, _> = secrets.iter().map(|s| sign(s, id, timestamp, body)).collect();
    Ok(signatures?.join(" "))
}

/// Whether an address is one a webhook must not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT; 0.0.0.0/8.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback() || v6.is_unspecified() || v6.is_unique_local() || v6.is_unicast_link_local()
        }
    }
}

/// Resolves the target's host and refuses private addresses unless
/// `allow_private`. Run before every send: DNS can change after the
/// subscription was made.
pub async fn check_target(url: &str, allow_private: bool) -> Result<Vec<SocketAddr>, WebhookError> {
    let parsed = url::Url::parse(url).map_err(|e| WebhookError::BadUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::BadUrl(format!("scheme {}", parsed.scheme())));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| WebhookError::BadUrl("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| WebhookError::Unresolvable(host.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(WebhookError::Unresolvable(host));
    }
    if !allow_private && let Some(a) = addrs.iter().find(|a| is_private(a.ip())) {
        return Err(WebhookError::PrivateTarget { host, ip: a.ip() });
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification.
    #[test]
    fn the_specs_test_vector_signs_as_published() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig.as_deref(), Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (a, b) = (generate_secret(), generate_secret());
        let h = signature_header(&[a.clone(), b.clone()], "m", 1, b"{}").unwrap_or_default();
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Ok(parts[0].to_owned()), sign(&a, "m", 1, b"{}"));
        assert_eq!(Ok(parts[1].to_owned()), sign(&b, "m", 1, b"{}"));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ="] {
            assert_eq!(secret_key(bad), Err(WebhookError::BadSecret), "{bad}");
        }
    }

    #[tokio::test]
    async fn private_loopback_and_link_local_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://[::ffff:192.168.1.1]/hook",
            "http://100.64.0.1/hook",
            "http://localhost/hook",
        ] {
            assert!(
                matches!(check_target(url, false).await, Err(WebhookError::PrivateTarget { .. })),
                "{url}"
            );
        }
        assert!(check_target("http://127.0.0.1:8080/hook", true).await.is_ok());
        assert!(matches!(
            check_target("ftp://example.com/x", false).await,
            Err(WebhookError::BadUrl(_))
        ));
        assert!(!is_private(
            "93.184.216.34".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
        ));
    }
}
