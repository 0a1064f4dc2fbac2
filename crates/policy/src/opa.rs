//! The OPA-server adapter of the `PolicyEngine` port, for operators who run
//! OPA with bundles: the same `casewire.authz` package, asked over OPA's Data
//! API (`POST /v1/data/casewire/authz/decision` with `{"input": ...}`).

use std::time::Duration;

use async_trait::async_trait;
use casewire_ports::{
    Decision, DefinitionAccessMap, PolicyEngine, PolicyError, Resource, Subject, VisibilityFilter, policy_input,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A policy decided by a running OPA server.
#[derive(Debug, Clone)]
pub struct OpaServer {
    base: String,
    http: reqwest::Client,
}

impl OpaServer {
    /// Talks to the OPA server at `base` (e.g. `http://127.0.0.1:8181`).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, PolicyError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PolicyError::Invalid(format!("OPA client: {e}")))?;
        Ok(OpaServer {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    async fn query<T: DeserializeOwned>(&self, rule: &str, input: Value) -> Result<T, PolicyError> {
        let url = format!("{}/v1/data/casewire/authz/{rule}", self.base);
        let res = self
            .http
            .post(&url)
            .json(&json!({"input": input}))
            .send()
            .await
            .map_err(|e| PolicyError::Unavailable(format!("{url}: {e}")))?;
        let status = res.status();
        if status.is_server_error() {
            return Err(PolicyError::Unavailable(format!("{url}: {status}")));
        }
        let body: Value = res
            .json()
            .await
            .map_err(|e| PolicyError::Invalid(format!("{url}: {status}: {e}")))?;
        if !status.is_success() {
            return Err(PolicyError::Invalid(format!("{url}: {status}: {body}")));
        }
        // OPA omits `result` when the rule is undefined: a policy that does
        // not define it is a misconfiguration, not a denial to guess at.
        let result = body
            .get("result")
            .cloned()
            .ok_or_else(|| PolicyError::Invalid(format!("{url}: the rule is undefined on the OPA server")))?;
        serde_json::from_value(result.clone()).map_err(|e| PolicyError::Invalid(format!("{url} = {result}: {e}")))
    }
}

#[async_trait]
impl PolicyEngine for OpaServer {
    async fn decide(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
        action: casewire_ports::Action,
        resource: Option<&Resource>,
    ) -> Result<Decision, PolicyError> {
        self.query("decision", policy_input(subject, definitions, Some(action), resource))
            .await
    }

    async fn filter(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
    ) -> Result<VisibilityFilter, PolicyError> {
        self.query("filter", policy_input(subject, definitions, None, None))
            .await
    }
}
