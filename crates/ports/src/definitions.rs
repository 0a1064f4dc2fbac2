//! The definition store port: every imported version of each case
//! definition, per tenant.

use async_trait::async_trait;
use casewire_domain::CaseDefinition;
use casewire_domain::types::TenantId;

use crate::StoreError;

/// Where case definitions are versioned.
#[async_trait]
pub trait DefinitionStore: Send + Sync + 'static {
    /// Stores a definition as the next version of its id and returns it with that version.
    async fn put_definition(
        &self,
        tenant: &TenantId,
        definition: &CaseDefinition,
    ) -> Result<CaseDefinition, StoreError>;
    /// A definition's given version, or its newest with `None`.
    async fn get_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<CaseDefinition>, StoreError>;
    /// The newest version of every definition.
    async fn list_definitions(&self, tenant: &TenantId) -> Result<Vec<CaseDefinition>, StoreError>;
}
