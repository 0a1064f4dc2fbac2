//! The caller, as the rest of the platform sees it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How token claims map to roles, groups and tenant. Defaults follow
/// Keycloak's shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim holding the tenant; when absent, the realm name taken from
    /// the issuer URL (`.../realms/<realm>`) is used.
    pub tenant_claim: String,
    /// The client whose `resource_access.<client>.roles` also count as roles.
    pub client_id: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            tenant_claim: "tenant".into(),
            client_id: None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sub: String,
    /// `preferred_username`, else `sub`; this is the actor on commands.
    pub name: String,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub tenant: String,
    pub issuer: String,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The realm name of a Keycloak-style issuer URL.
pub fn realm_of(issuer: &str) -> Option<&str> {
    let (_, rest) = issuer.trim_end_matches('/').rsplit_once("/realms/")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

impl Principal {
    /// Builds the principal from verified claims.
    pub fn from_claims(claims: &Value, mapping: &ClaimMapping) -> Option<Principal> {
        let sub = claims.get("sub")?.as_str()?.to_owned();
        let issuer = claims.get("iss")?.as_str()?.to_owned();
        let name = claims
            .get("preferred_username")
            .and_then(Value::as_str)
            .unwrap_or(&sub)
            .to_owned();
        let mut roles = strings(claims.pointer("/realm_access/roles"));
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
        let groups = strings(claims.get("groups"));
        let tenant = claims
            .get(&mapping.tenant_claim)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| realm_of(&issuer).map(str::to_owned))?;
        Some(Principal {
            sub,
            name,
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
            "groups": ["/queues/support"]
        });
        let mapping = ClaimMapping {
            client_id: Some("casewire".into()),
            ..ClaimMapping::default()
        };
        let p = Principal::from_claims(&claims, &mapping).unwrap();
        assert_eq!(p.name, "alice");
        assert_eq!(p.roles, vec!["case-worker", "integration"]);
        assert_eq!(p.groups, vec!["/queues/support"]);
        assert_eq!(p.tenant, "acme", "the realm is the fallback tenant");
        let with_tenant = json!({"sub": "s", "iss": "https://x/realms/r", "tenant": "globex"});
        assert_eq!(Principal::from_claims(&with_tenant, &mapping).unwrap().tenant, "globex");
        assert!(Principal::from_claims(&json!({"sub": "s", "iss": "https://x/"}), &mapping).is_none());
    }
}
