//! The definition store port: every imported version of each case
//! definition, and of each business calendar, per tenant.

use async_trait::async_trait;
use casewire_domain::CaseDefinition;
use casewire_domain::calendar::BusinessCalendar;
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
    /// Stores a calendar as the next version of its id and returns it with that version.
    async fn put_calendar(
        &self,
        tenant: &TenantId,
        calendar: &BusinessCalendar,
    ) -> Result<BusinessCalendar, StoreError>;
    /// A calendar's given version, or its newest with `None`.
    async fn get_calendar(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<BusinessCalendar>, StoreError>;
    /// The newest version of every calendar.
    async fn list_calendars(&self, tenant: &TenantId) -> Result<Vec<BusinessCalendar>, StoreError>;
}

/// What the definition store keeps versions of, for the adapters: the
/// table or collection (`KIND`), the id, and where the version goes.
pub trait Versioned: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
    /// The table (SQLite) or collection (MongoDB) name.
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn set_version(&mut self, version: u32);
}

impl Versioned for CaseDefinition {
    const KIND: &'static str = "definitions";
    fn id(&self) -> &str {
        &self.id
    }
    fn set_version(&mut self, version: u32) {
        self.version = version;
    }
}

impl Versioned for BusinessCalendar {
    const KIND: &'static str = "calendars";
    fn id(&self) -> &str {
        &self.id
    }
    fn set_version(&mut self, version: u32) {
        self.version = version;
    }
}
