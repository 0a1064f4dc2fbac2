//! Case definitions: what kind of case this is, its data schema, its stage
//! graph, priorities with SLA targets, default queue and access groups.
//! Definitions are written in YAML (or JSON) by administrators and are
//! versioned: each import of the same `id` makes a new version, and a case
//! stays on the version it was opened with.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::DomainError;
use crate::types::{KeyPrefix, QueueName};

/// One stage of the case's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDef {
    /// Stable id, used in commands and events; not empty, and unique
    /// among the stages.
    #[schema(min_length = 1)]
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the SLA clock pauses while a case sits here (for example
    /// "waiting for customer").
    #[serde(default)]
    pub pauses_sla: bool,
}

/// A priority and its SLA goals: durations like `30m`, `4h`, `2d` or `1w`
/// (a day is 24 hours of the clock's time), in the open hours of the
/// definition's calendar (`sla.calendar`), or every hour without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriorityDef {
    /// Not empty, and unique among the priorities.
    #[schema(min_length = 1)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// A duration: digits and a unit, `m`, `h`, `d` or `w`.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]+[mhdw]$")]
    pub first_response: Option<String>,
    /// A duration: digits and a unit, `m`, `h`, `d` or `w`.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]+[mhdw]$")]
    pub resolution: Option<String>,
    /// From each requester reply (after the first response) to the next
    /// response. A duration: digits and a unit, `m`, `h`, `d` or `w`.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]+[mhdw]$")]
    pub next_response: Option<String>,
}

impl PriorityDef {
    /// Its goals; a metric without one has no clock.
    pub fn goals(&self) -> crate::sla::Goals {
        let goal = |d: &Option<String>| d.as_deref().and_then(crate::sla::parse_duration);
        crate::sla::Goals {
            first_response: goal(&self.first_response),
            next_response: goal(&self.next_response),
            resolution: goal(&self.resolution),
        }
    }
}

/// How the definition's SLA clocks run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlaDef {
    /// The business calendar the clocks count on (an id of the tenant's
    /// calendars); none: every hour counts.
    #[serde(default)]
    pub calendar: Option<String>,
    /// What meets the first-response goal: `comment` (a public comment by
    /// staff), `assignment`, or `either`.
    #[serde(default)]
    pub first_response_by: crate::sla::ResponseBy,
    /// When a clock warns: a share of its goal (`80%`) or a duration before
    /// it is due (`30m`).
    #[serde(default = "SlaDef::default_warn")]
    pub warn_at: String,
}

impl SlaDef {
    fn default_warn() -> String {
        "80%".into()
    }

    /// The policy the clocks are folded with (the warning checked at import).
    pub fn policy(&self) -> crate::sla::Policy {
        crate::sla::Policy {
            first_response_by: self.first_response_by,
            warn: crate::sla::Warn::parse(&self.warn_at).unwrap_or(crate::sla::Warn::Percent(80)),
        }
    }
}

impl Default for SlaDef {
    fn default() -> Self {
        SlaDef {
            calendar: None,
            first_response_by: crate::sla::ResponseBy::Comment,
            warn_at: SlaDef::default_warn(),
        }
    }
}

/// Which groups may see the cases and which may work them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessDef {
    #[serde(default)]
    pub view: Vec<String>,
    #[serde(default)]
    pub work: Vec<String>,
}

/// The kinds of notification the rules know (see the notify crate).
pub const NOTIFICATION_KINDS: [&str; 7] = ["assigned", "queue", "comment", "received", "resolved", "watch", "sla"];

/// The most characters of one template part.
const MAX_TEMPLATE: usize = 20_000;

/// A definition's own wording of one kind of message (minijinja, with
/// `case.key`, `case.title`, `case.stage`, `case.priority`, `case.queue`,
/// `actor`, `event`, `link`, and per kind `body`, `resolution`, `note`).
/// The notify publisher renders it with a bounded amount of work; the
/// syntax is checked at import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageTemplate {
    pub subject: String,
    pub text: String,
    /// Without it, the text is the HTML body, escaped.
    #[serde(default)]
    pub html: Option<String>,
}

/// A definition's say in notifications about its cases, on top of the
/// platform's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRules {
    /// Kinds nobody is told of for these cases.
    #[serde(default)]
    pub disabled: Vec<String>,
    /// Kinds that go out at once, past quiet hours, digests and mutes.
    #[serde(default)]
    pub critical: Vec<String>,
    /// The definition's own wording, per kind, in place of the built-in
    /// templates. A reply on a mail case keeps its `[KEY]` subject tag:
    /// without one in the subject, the reply's usual subject is used.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, MessageTemplate>,
}

/// A versioned case definition. Besides what its schema says, the stages
/// and priorities it names (`initialStage`, `transitions`,
/// `terminalStages`, `reopenStage`, `defaultPriority`) must be its own, a
/// terminal stage has no transitions out, and `schema` must compile: else
/// 422 `CW-INVALID-DEFINITION`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaseDefinition {
    /// Stable id such as `insurance-claim`: a slug of a-z, 0-9 and `-`.
    #[schema(pattern = r"^[a-z0-9-]+$", min_length = 1)]
    pub id: String,
    /// Assigned by the store on import; ignored in the source file.
    #[serde(default)]
    pub version: u32,
    /// Not empty and not only whitespace.
    #[schema(
        min_length = 1,
        pattern = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub key_prefix: KeyPrefix,
    /// JSON Schema (draft 2020-12 unless `$schema` says otherwise) of the
    /// case data. The portal renders it as a form.
    #[serde(default = "empty_object_schema")]
    #[schema(value_type = Object)]
    pub schema: Value,
    /// At least one.
    #[schema(min_items = 1)]
    pub stages: Vec<StageDef>,
    /// One of the stages.
    #[schema(min_length = 1)]
    pub initial_stage: String,
    /// Allowed moves: from stage id to the stage ids it may move to.
    #[serde(default)]
    pub transitions: BTreeMap<String, Vec<String>>,
    /// Stages a case never leaves by a stage move (a reopen takes it back to
    /// `reopenStage`).
    #[serde(default)]
    pub terminal_stages: Vec<String>,
    /// Where a reopened case goes when it sits in a terminal stage; defaults
    /// to the initial stage.
    #[serde(default)]
    pub reopen_stage: Option<String>,
    /// At least one: `defaultPriority` is one of them.
    #[schema(min_items = 1)]
    pub priorities: Vec<PriorityDef>,
    /// One of the priorities.
    #[schema(min_length = 1)]
    pub default_priority: String,
    pub default_queue: QueueName,
    /// Resolution codes `resolve` accepts; empty means any non-empty code.
    #[serde(default)]
    pub resolution_codes: Vec<String>,
    #[serde(default)]
    pub access: AccessDef,
    /// Kinds of notification (`assigned`, `queue`, `comment`, `resolved`,
    /// `watch`) turned off or made critical for these cases.
    #[serde(default)]
    pub notifications: NotificationRules,
    /// How its SLA clocks run (the goals are the priorities').
    #[serde(default)]
    pub sla: SlaDef,
    /// Rules that create tasks and issue commands when events happen
    /// (checked at import: event types, stages, priorities, forms and
    /// commands must be valid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub automation: Vec<crate::automation::AutomationRule>,
    /// `schema`, compiled on first use and shared by clones (not part of
    /// the document).
    #[serde(skip)]
    #[schema(ignore)]
    compiled: CompiledSchema,
}

/// A definition's data schema compiled once: compiling costs far more than
/// validating, and the definitions a process works with are few and never
/// change (an import makes a new version).
#[derive(Clone, Default)]
struct CompiledSchema(std::sync::Arc<std::sync::OnceLock<Result<std::sync::Arc<jsonschema::Validator>, String>>>);

impl PartialEq for CompiledSchema {
    /// Derived from `schema`, which the definitions' equality compares.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "compiled"
        } else {
            "not yet compiled"
        })
    }
}

/// Walks the YAML events (which never expands anything) and refuses the
/// first alias. Syntax errors are left to serde_yaml, which words them
/// better.
fn refuse_aliases(source: &str) -> Result<(), DomainError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(source);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) | Err(_) => return Ok(()),
            Ok((Event::Alias(_), mark)) => {
                return Err(DomainError::InvalidDefinition(format!(
                    "YAML aliases (*name) are not allowed in definitions (line {}, column {}); write the value out",
                    mark.line(),
                    mark.col() + 1
                )));
            }
            Ok(_) => {}
        }
    }
}

/// Validates `value` with `validator`: every violation, each with where
/// in the value it is, or `Ok`.
pub(crate) fn check_against(validator: &jsonschema::Validator, value: &Value) -> Result<(), DomainError> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path.to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DomainError::SchemaViolation { errors })
    }
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

/// A lower-case slug: a-z, 0-9 and `-`, not empty.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl CaseDefinition {
    /// Parses a YAML (or JSON, which is YAML) definition and validates it.
    /// Aliases (`*name`) are refused before anything is built: expanding
    /// them is how a small document becomes gigabytes (billion laughs).
    pub fn parse_yaml(source: &str) -> Result<Self, DomainError> {
        refuse_aliases(source)?;
        let def: CaseDefinition =
            serde_yaml::from_str(source).map_err(|e| DomainError::InvalidDefinition(e.to_string()))?;
        def.validate()?;
        Ok(def)
    }

    /// Checks the internal consistency of the definition: every referenced
    /// stage and priority exists, terminal stages have no way out, the
    /// schema compiles and SLA targets parse.
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| Err(DomainError::InvalidDefinition(m));
        if !is_slug(&self.id) {
            return bad(format!("id '{}' must be a lower-case slug", self.id));
        }
        if self.name.trim().is_empty() {
            return bad("name must not be empty".into());
        }
        let mut stages = BTreeSet::new();
        for s in &self.stages {
            if s.id.is_empty() || !stages.insert(s.id.as_str()) {
                return bad(format!("stage id '{}' is empty or repeated", s.id));
            }
        }
        if stages.is_empty() {
            return bad("at least one stage is required".into());
        }
        if !stages.contains(self.initial_stage.as_str()) {
            return bad(format!("initialStage '{}' is not a stage", self.initial_stage));
        }
        for (from, tos) in &self.transitions {
            if !stages.contains(from.as_str()) {
                return bad(format!("transition from unknown stage '{from}'"));
            }
            for to in tos {
                if !stages.contains(to.as_str()) {
                    return bad(format!("transition from '{from}' to unknown stage '{to}'"));
                }
            }
        }
        for t in &self.terminal_stages {
            if !stages.contains(t.as_str()) {
                return bad(format!("terminal stage '{t}' is not a stage"));
            }
            if self.transitions.get(t).is_some_and(|v| !v.is_empty()) {
                return bad(format!("terminal stage '{t}' must have no transitions out"));
            }
        }
        if let Some(r) = &self.reopen_stage
            && (!stages.contains(r.as_str()) || self.is_terminal(r))
        {
            return bad(format!("reopenStage '{r}' must be a non-terminal stage"));
        }
        let mut priorities = BTreeSet::new();
        for p in &self.priorities {
            if p.id.is_empty() || !priorities.insert(p.id.as_str()) {
                return bad(format!("priority id '{}' is empty or repeated", p.id));
            }
            for target in [&p.first_response, &p.next_response, &p.resolution]
                .into_iter()
                .flatten()
            {
                if crate::sla::parse_duration(target).is_none() {
                    return bad(format!(
                        "SLA target '{target}' of priority '{}' must look like 30m, 4h, 2d or 1w",
                        p.id
                    ));
                }
            }
        }
        if crate::sla::Warn::parse(&self.sla.warn_at).is_none() {
            return bad(format!(
                "sla.warnAt '{}' must be a share like 80% or a duration like 30m",
                self.sla.warn_at
            ));
        }
        if let Some(c) = &self.sla.calendar
            && !is_slug(c)
        {
            return bad(format!("sla.calendar '{c}' must be a slug of a-z, 0-9 and -"));
        }
        if !priorities.contains(self.default_priority.as_str()) {
            return bad(format!("defaultPriority '{}' is not a priority", self.default_priority));
        }
        let rules = &self.notifications;
        if let Some(k) = rules
            .disabled
            .iter()
            .chain(&rules.critical)
            .chain(rules.templates.keys())
            .find(|k| !NOTIFICATION_KINDS.contains(&k.as_str()))
        {
            return bad(format!(
                "notifications: '{k}' is not a kind ({})",
                NOTIFICATION_KINDS.join(", ")
            ));
        }
        for (kind, t) in &rules.templates {
            let parts = [Some(&t.subject), Some(&t.text), t.html.as_ref()];
            if parts.iter().flatten().any(|p| p.chars().count() > MAX_TEMPLATE) {
                return bad(format!(
                    "notifications.templates.{kind}: a part is longer than {MAX_TEMPLATE} characters"
                ));
            }
        }
        crate::automation::check_names(&self.automation)?;
        for rule in &self.automation {
            rule.validate(self)?;
        }
        if !self.schema.is_object() {
            return bad("schema must be a JSON Schema object".into());
        }
        jsonschema::validator_for(&self.schema)
            .map_err(|e| DomainError::InvalidDefinition(format!("schema does not compile: {e}")))?;
        Ok(())
    }

    /// Validates case data against the definition's schema.
    pub fn validate_data(&self, data: &Value) -> Result<(), DomainError> {
        let validator = self
            .compiled
            .0
            .get_or_init(|| {
                jsonschema::validator_for(&self.schema)
                    .map(std::sync::Arc::new)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| DomainError::InvalidDefinition(format!("schema does not compile: {e}")))?;
        check_against(validator, data)
    }

    /// Whether `stage` is one of the definition's stages.
    pub fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s.id == stage)
    }

    /// Whether `stage` is terminal.
    pub fn is_terminal(&self, stage: &str) -> bool {
        self.terminal_stages.iter().any(|s| s == stage)
    }

    /// Whether a case may move from `from` to `to`.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.transitions
            .get(from)
            .is_some_and(|tos| tos.iter().any(|t| t == to))
    }

    /// Whether `priority` is one of the definition's priorities.
    pub fn has_priority(&self, priority: &str) -> bool {
        self.priorities.iter().any(|p| p.id == priority)
    }

    /// Zero-based rank of a priority in the definition's order (lower is
    /// more urgent when listed first).
    pub fn priority_rank(&self, priority: &str) -> Option<usize> {
        self.priorities.iter().position(|p| p.id == priority)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"
id: complaint
name: Customer complaint
keyPrefix: CMP
schema:
  type: object
  properties:
    product: { type: string, minLength: 1 }
    amount: { type: number, minimum: 0 }
  required: [product]
  additionalProperties: false
stages:
  - id: new
  - id: investigating
  - id: waiting
    pausesSla: true
  - id: done
initialStage: new
transitions:
  new: [investigating, done]
  investigating: [waiting, done]
  waiting: [investigating]
terminalStages: [done]
priorities:
  - { id: high, firstResponse: 4h, resolution: 2d }
  - { id: normal, firstResponse: 1d, resolution: 1w }
defaultPriority: normal
defaultQueue: complaints
resolutionCodes: [fixed, refunded, rejected]
access:
  view: [/queues/complaints]
  work: [/queues/complaints]
"#;

    pub fn sample() -> CaseDefinition {
        CaseDefinition::parse_yaml(SAMPLE).unwrap()
    }

    #[test]
    fn sample_parses() {
        let def = sample();
        assert!(def.allows("new", "investigating"));
        assert!(!def.allows("new", "waiting"));
        assert!(def.is_terminal("done"));
        assert_eq!(def.priority_rank("normal"), Some(1));
    }

    fn expect_invalid(source: &str, needle: &str) {
        match CaseDefinition::parse_yaml(source) {
            Err(DomainError::InvalidDefinition(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected InvalidDefinition({needle}), got {other:?}"),
        }
    }

    #[test]
    fn broken_definitions_are_refused() {
        expect_invalid(
            &SAMPLE.replace("initialStage: new", "initialStage: nope"),
            "initialStage",
        );
        expect_invalid(
            &format!("{SAMPLE}notifications:\n  critical: [everything]\n"),
            "not a kind",
        );
        expect_invalid(
            &SAMPLE.replace("waiting: [investigating]", "waiting: [gone]"),
            "unknown stage",
        );
        expect_invalid(
            &SAMPLE.replace("waiting: [investigating]", "done: [new]"),
            "terminal stage",
        );
        expect_invalid(
            &SAMPLE.replace("defaultPriority: normal", "defaultPriority: meh"),
            "defaultPriority",
        );
        expect_invalid(
            &SAMPLE.replace("firstResponse: 4h", "firstResponse: soon"),
            "SLA target",
        );
        expect_invalid(
            &SAMPLE.replace("firstResponse: 4h", "firstResponse: 4h, nextResponse: 0h"),
            "SLA target",
        );
        expect_invalid(&format!("{SAMPLE}\nsla:\n  warnAt: 120%\n"), "sla.warnAt");
        expect_invalid(&format!("{SAMPLE}\nsla:\n  calendar: Berlin Office\n"), "sla.calendar");
        expect_invalid(
            &format!("{SAMPLE}\nsla:\n  firstResponseBy: phone\n"),
            "firstResponseBy",
        );
        expect_invalid(
            &SAMPLE.replace("type: object\n  properties", "type: 12\n  properties"),
            "schema",
        );
        expect_invalid(&SAMPLE.replace("keyPrefix: CMP", "keyPrefix: cmp"), "keyPrefix");
        expect_invalid(&format!("{SAMPLE}\nbogus: 1\n"), "unknown field");
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        // One anchored list, referenced 100,000 times inside the schema:
        // 300 KB of YAML that expands to a million strings and more.
        let mut bomb = SAMPLE.replace(
            "  additionalProperties: false",
            "  additionalProperties: false\n  x-list: &l [a, b, c, d, e, f, g, h, i, j]\n  x-refs:",
        );
        bomb = bomb.replacen(
            "  x-refs:",
            &format!("  x-refs: [{}]", vec!["*l"; 100_000].join(",")),
            1,
        );
        assert!(bomb.len() > 300_000, "{}", bomb.len());
        expect_invalid(&bomb, "aliases");
        // An anchor alone expands nothing and is fine.
        let anchored = SAMPLE.replace("defaultQueue: complaints", "defaultQueue: &q complaints");
        assert!(CaseDefinition::parse_yaml(&anchored).is_ok());
    }

    #[test]
    fn data_is_checked_against_the_schema() {
        let def = sample();
        assert!(def.validate_data(&serde_json::json!({"product": "kettle"})).is_ok());
        match def.validate_data(&serde_json::json!({"amount": -1, "extra": true})) {
            Err(DomainError::SchemaViolation { errors }) => assert_eq!(errors.len(), 3, "{errors:?}"),
            other => panic!("{other:?}"),
        }
    }
}
