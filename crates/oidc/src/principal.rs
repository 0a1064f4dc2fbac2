//! The caller, as the rest of the platform sees it.

use casewire_domain::types::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How token claims map to roles, groups, name, e-mail and tenant. Claim
/// names are dotted paths into the token (`realm_access.roles`). The
/// defaults follow Keycloak's shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim that may name the tenant. The tenant itself comes from the
    /// issuer (its configured `tenant`, else the realm of its URL); a token
    /// whose claim names another tenant is refused, so one realm's admin
    /// can never reach another tenant by writing a claim.
    pub tenant_claim: String,
    /// The client whose `resource_access.<client>.roles` also count as roles.
    pub client_id: Option<String>,
    /// The list of realm-wide roles.
    pub roles_claim: String,
    /// The list of groups; queue membership is a group `/queues/<name>`.
    pub groups_claim: String,
    /// The name the platform shows and records as the actor (falls back to `sub`).
    pub name_claim: String,
    /// The e-mail address, which makes a requester see their own cases.
    pub email_claim: String,
    /// The claim that says the e-mail address was verified; an address
    /// counts only when it is `true`, since anyone can type another
    /// person's address into an unverified profile. Empty: trust every
    /// address the issuer puts in tokens (for issuers that verify all).
    pub email_verified_claim: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            tenant_claim: "tenant".into(),
            client_id: None,
            roles_claim: "realm_access.roles".into(),
            groups_claim: "groups".into(),
            name_claim: "preferred_username".into(),
            email_claim: "email".into(),
            email_verified_claim: "email_verified".into(),
        }
    }
}

/// An authenticated caller: a person, or a service account
/// (`client_credentials`), which is an actor like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sub: String,
    /// The name claim, else `sub`; this is the actor on commands.
    pub name: String,
    /// Lower-cased, so it compares with requesters' addresses.
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub tenant: TenantId,
    pub issuer: String,
    /// When the token expires (`exp`, seconds since the epoch): long-lived
    /// connections (streams) end then.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Follows a dotted path (`realm_access.roles`) into the claims.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, part| v.get(part))
}

/// The realm name of a Keycloak-style issuer URL.
pub fn realm_of(issuer: &str) -> Option<&str> {
    let (_, rest) = issuer.trim_end_matches('/').rsplit_once("/realms/")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Why verified claims do not make a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// `sub` or `iss` is missing or not a string.
    Missing,
    /// The tenant claim names another tenant than the issuer's.
    TenantMismatch { claimed: String, issuer_tenant: String },
    /// The issuer's tenant is not a valid tenant name (config validation
    /// refuses such issuers, so this is a token of an unchecked issuer).
    InvalidTenant(String),
}

impl Principal {
    /// This caller as the notification directory keeps them.
    pub fn person(&self, seen_at: chrono::DateTime<chrono::Utc>) -> casewire_ports::Person {
        casewire_ports::Person {
            tenant: self.tenant.clone(),
            username: self.name.clone(),
            sub: self.sub.clone(),
            email: self.email.clone(),
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            seen_at,
        }
    }

    /// The policy's view of this caller, the same for every way in.
    pub fn subject(&self) -> casewire_ports::Subject {
        casewire_ports::Subject {
            sub: self.sub.clone(),
            username: self.name.clone(),
            email: self.email.clone(),
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            tenant: self.tenant.clone(),
        }
    }

    /// Builds the principal from verified claims of an issuer bound to
    /// `tenant`.
    pub fn from_claims(claims: &Value, mapping: &ClaimMapping, tenant: &str) -> Result<Principal, ClaimsError> {
        let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
        let sub = text("sub").ok_or(ClaimsError::Missing)?;
        let issuer = text("iss").ok_or(ClaimsError::Missing)?;
        let name = claim(claims, &mapping.name_claim)
            .and_then(Value::as_str)
            .unwrap_or(&sub)
            .to_owned();
        let verified = mapping.email_verified_claim.is_empty()
            || claim(claims, &mapping.email_verified_claim) == Some(&Value::Bool(true));
        let email = claim(claims, &mapping.email_claim)
            .and_then(Value::as_str)
            .filter(|e| verified && !e.trim().is_empty())
            .map(str::to_lowercase);
        let mut roles = strings(claim(claims, &mapping.roles_claim));
        if let Some(client) = &mapping.client_id {
            roles.extend(strings(
                claims
                    .get("resource_access")
                    .and_then(|r| r.get(client))
                    .and_then(|c| c.get("roles")),
            ));
        }
        roles.sort();
        roles.dedup();
        let groups = strings(claim(claims, &mapping.groups_claim));
        if let Some(claimed) = claim(claims, &mapping.tenant_claim).filter(|v| !v.is_null())
            && claimed.as_str() != Some(tenant)
        {
            return Err(ClaimsError::TenantMismatch {
                claimed: claimed.as_str().map_or_else(|| claimed.to_string(), str::to_owned),
                issuer_tenant: tenant.to_owned(),
            });
        }
        let tenant = TenantId::parse(tenant)
            .map_err(|e| ClaimsError::InvalidTenant(format!("issuer tenant '{tenant}': {e}")))?;
        let expires_at = claims.get("exp").and_then(Value::as_i64);
        Ok(Principal {
            expires_at,
            sub,
            name,
            email,
            roles,
            groups,
            tenant,
            issuer,
        })
    }

    /// Whether the caller has a role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keycloak_claims_map_to_a_principal() {
        let claims = json!({
            "sub": "u-1", "iss": "https://kc.example/realms/acme", "preferred_username": "alice",
            "realm_access": {"roles": ["case-worker"]},
            "resource_access": {"casewire": {"roles": ["integration"]}, "other": {"roles": ["x"]}},
            "groups": ["/queues/support"], "email": "Alice@Example.com"
        });
        let mapping = ClaimMapping {
            client_id: Some("casewire".into()),
            ..ClaimMapping::default()
        };
        let p = Principal::from_claims(&claims, &mapping, "acme").unwrap();
        assert_eq!(p.name, "alice");
        assert_eq!(p.roles, vec!["case-worker", "integration"]);
        assert_eq!(p.groups, vec!["/queues/support"]);
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.email, None, "an address without email_verified does not count");
        let mut verified = claims.clone();
        verified["email_verified"] = serde_json::json!(true);
        let p = Principal::from_claims(&verified, &mapping, "acme").unwrap();
        assert_eq!(p.email.as_deref(), Some("alice@example.com"));
        verified["email_verified"] = serde_json::json!("true");
        let p = Principal::from_claims(&verified, &mapping, "acme").unwrap();
        assert_eq!(p.email, None, "only the boolean true verifies");
        let custom = ClaimMapping {
            roles_claim: "app.roles".into(),
            name_claim: "upn".into(),
            ..ClaimMapping::default()
        };
        let other = json!({"sub": "s", "iss": "https://x/realms/r", "upn": "u@x", "app": {"roles": ["case-viewer"]}});
        let q = Principal::from_claims(&other, &custom, "r").unwrap();
        assert_eq!(
            (q.name.as_str(), q.roles.clone()),
            ("u@x", vec!["case-viewer".to_owned()])
        );
        let with_tenant = json!({"sub": "s", "iss": "https://x/realms/r", "tenant": "globex"});
        assert_eq!(
            Principal::from_claims(&with_tenant, &mapping, "globex")
                .unwrap()
                .tenant
                .as_str(),
            "globex"
        );
        assert!(
            matches!(
                Principal::from_claims(&json!({"sub": "s", "iss": "i"}), &mapping, "Not A Tenant"),
                Err(ClaimsError::InvalidTenant(_))
            ),
            "an issuer tenant that is no tenant name is refused"
        );
        assert_eq!(
            Principal::from_claims(&with_tenant, &mapping, "r"),
            Err(ClaimsError::TenantMismatch {
                claimed: "globex".into(),
                issuer_tenant: "r".into()
            }),
            "a claim never moves a token to another tenant"
        );
        let numeric = json!({"sub": "s", "iss": "https://x/realms/r", "tenant": 7});
        assert!(Principal::from_claims(&numeric, &mapping, "r").is_err());
        assert_eq!(
            Principal::from_claims(&json!({"iss": "https://x/"}), &mapping, "r"),
            Err(ClaimsError::Missing)
        );
    }
}
