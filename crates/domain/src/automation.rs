//! Automation rules of a definition: on an event of a case, when the case
//! meets conditions, do actions (create a task, or issue a command).
//! Which rules fire and what they ask for is decided here, from the event
//! and the case as that event left it, without I/O; the engine's
//! automation consumer turns the answer into commands.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::case::Case;
use crate::command::CaseCommand;
use crate::definition::CaseDefinition;
use crate::error::DomainError;
use crate::event::CaseEvent;
use crate::task::{CreateTask, TaskKind};
use crate::types::{QueueName, Tag, UserRef};

/// How deep automation may cascade: an event caused by a rule's command
/// may fire rules again, up to this depth; past it the chain stops and the
/// case gets an internal comment saying so.
pub const MAX_DEPTH: u32 = 3;
/// The actor of automation's commands, with the depth after a colon.
pub const ACTOR: &str = "automation";

/// What the case must look like (as the event left it) for a rule to fire.
/// Every field given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// One of these stages.
    #[serde(default)]
    pub stage: Vec<String>,
    /// One of these priorities.
    #[serde(default)]
    pub priority: Vec<String>,
    /// All of these tags.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<Tag>,
    /// Top-level fields of the case data with these exact values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: BTreeMap<String, Value>,
}

/// A task a rule creates. String values of `variables` that start with
/// `$.` name a field of the case (`$.key`, `$.priority`,
/// `$.data.estimatedAmount`) and take its value when the rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskTemplate {
    pub kind: TaskKind,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub queue: Option<QueueName>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<UserRef>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, Value>,
    #[serde(default)]
    pub priority: i64,
}

/// One thing a rule does: exactly one of `createTask` and `command`.
/// (A struct, not an enum: YAML writes it as a one-key map.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleAction {
    /// Create a human or external task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_task: Option<TaskTemplate>,
    /// Issue a command (`{"type": "case.tag", "data": {"tag": "vip"}}`);
    /// not `case.open`, and not a task command (use `createTask`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub command: Option<Value>,
}

/// `on` an event type, `when` the case meets a condition, `do` actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomationRule {
    /// A slug, unique in the definition; it names the rule in history.
    pub name: String,
    /// An event type's short name, e.g. `opened`, `stage-changed`,
    /// `task-error-raised`.
    pub on: String,
    #[serde(default)]
    pub when: Condition,
    #[serde(rename = "do")]
    pub actions: Vec<RuleAction>,
}

/// A command a rule asks for, with its deterministic ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule: String,
    /// The same for the same event, rule and action, so a redelivered or
    /// replayed event issues the same command, which the engine decides
    /// only once.
    pub command_id: Uuid,
    pub command: CaseCommand,
}

fn bad<T>(rule: &str, message: impl std::fmt::Display) -> Result<T, DomainError> {
    Err(DomainError::InvalidDefinition(format!(
        "automation rule '{rule}': {message}"
    )))
}

impl AutomationRule {
    /// Checks the rule against its definition at import.
    pub fn validate(&self, def: &CaseDefinition) -> Result<(), DomainError> {
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(name, "name must be a lower-case slug");
        }
        if !CaseEvent::CATALOGUE.iter().any(|(n, _)| *n == self.on) {
            return bad(name, format!("'on: {}' is not an event type", self.on));
        }
        if let Some(s) = self.when.stage.iter().find(|s| !def.has_stage(s)) {
            return bad(name, format!("stage '{s}' is not a stage of the definition"));
        }
        if let Some(p) = self.when.priority.iter().find(|p| !def.has_priority(p)) {
            return bad(name, format!("priority '{p}' is not a priority of the definition"));
        }
        if self.actions.is_empty() {
            return bad(name, "'do' needs at least one action");
        }
        for action in &self.actions {
            match (&action.create_task, &action.command) {
                (Some(t), None) => check_task(name, t)?,
                (None, Some(c)) => {
                    let command = parse_command(name, c)?;
                    if command.name().starts_with("task.") || matches!(command, CaseCommand::Open(_)) {
                        return bad(name, format!("{} is not a command a rule may issue", command.name()));
                    }
                }
                _ => return bad(name, "each action is exactly one of createTask and command"),
            }
        }
        Ok(())
    }

    /// Whether the rule fires on `event`, which left the case as `case`.
    pub fn fires_on(&self, event: &CaseEvent, case: &Case) -> bool {
        let w = &self.when;
        event.name() == self.on
            && (w.stage.is_empty() || w.stage.contains(&case.stage))
            && (w.priority.is_empty() || w.priority.contains(&case.priority))
            && w.tags.iter().all(|t| case.tags.contains(t))
            && w.data.iter().all(|(k, v)| case.data.get(k) == Some(v))
    }
}

fn check_task(rule: &str, t: &TaskTemplate) -> Result<(), DomainError> {
    if t.name.trim().is_empty() {
        return bad(rule, "a task needs a name");
    }
    match t.kind {
        TaskKind::External if t.topic.as_deref().is_none_or(|x| x.trim().is_empty()) => {
            bad(rule, "an external task needs a topic")
        }
        TaskKind::External if t.form.is_some() || t.queue.is_some() || t.assignee.is_some() => {
            bad(rule, "form, queue and assignee are for human tasks")
        }
        TaskKind::Human if t.topic.is_some() => bad(rule, "topic is for external tasks"),
        _ => match &t.form {
            Some(form) => jsonschema::validator_for(form)
                .map(|_| ())
                .or_else(|e| bad(rule, format!("the form is not a usable JSON Schema: {e}"))),
            None => Ok(()),
        },
    }
}

fn parse_command(rule: &str, c: &Value) -> Result<CaseCommand, DomainError> {
    serde_json::from_value(c.clone()).or_else(|e| bad(rule, format!("not a command: {e}")))
}

/// The value `$.a.b` names in the case, or the value itself.
fn resolve(value: &Value, case: &Value) -> Value {
    match value.as_str().and_then(|s| s.strip_prefix("$.")) {
        Some(path) => path
            .split('.')
            .try_fold(case, |v, key| v.get(key))
            .cloned()
            .unwrap_or(Value::Null),
        None => value.clone(),
    }
}

/// What the definition's rules ask for on `event` (id `event_id`), which
/// left the case as `case`. Every rule that fires gives each action a
/// command id derived from the event, rule and action.
pub fn fire(def: &CaseDefinition, event_id: Uuid, event: &CaseEvent, case: &Case) -> Vec<Fired> {
    let mut out = Vec::new();
    let case_json = serde_json::to_value(case).unwrap_or(Value::Null);
    for rule in def.automation.iter().filter(|r| r.fires_on(event, case)) {
        for (n, action) in rule.actions.iter().enumerate() {
            let command_id = Uuid::new_v5(&event_id, format!("{}/{n}", rule.name).as_bytes());
            let command = match (&action.create_task, &action.command) {
                (Some(t), _) => CaseCommand::CreateTask(CreateTask {
                    task_id: Some(Uuid::new_v5(&command_id, b"task")),
                    kind: t.kind,
                    name: t.name.clone(),
                    description: t.description.clone(),
                    form: t.form.clone(),
                    queue: t.queue.clone(),
                    assignee: t.assignee.clone(),
                    due: None,
                    topic: t.topic.clone(),
                    variables: Some(Value::Object(
                        t.variables
                            .iter()
                            .map(|(k, v)| (k.clone(), resolve(v, &case_json)))
                            .collect(),
                    )),
                    priority: t.priority,
                    cause: Some(event_id),
                }),
                // Checked at import.
                (None, Some(c)) => match serde_json::from_value(c.clone()) {
                    Ok(command) => command,
                    Err(_) => continue,
                },
                (None, None) => continue,
            };
            out.push(Fired {
                rule: rule.name.clone(),
                command_id,
                command,
            });
        }
    }
    out
}

/// The depth of the automation chain an event's actor is part of: 0 for
/// a person or system, `n` for `automation:n`.
pub fn depth_of(actor: &str) -> u32 {
    actor
        .strip_prefix(ACTOR)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The rule names of a definition are unique.
pub fn check_names(rules: &[AutomationRule]) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    match rules.iter().find(|r| !seen.insert(r.name.as_str())) {
        Some(r) => bad(&r.name, "the name is used twice"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Decision, EventMeta};
    use crate::command::{MoveToStage, OpenCase};
    use crate::types::{CaseKey, KeyPrefix, TenantId};
    use chrono::Utc;
    use serde_json::json;

    const CLAIM: &str = include_str!("../../../definitions/insurance-claim.yaml");

    fn claim() -> CaseDefinition {
        CaseDefinition::parse_yaml(CLAIM).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Decides `command` on `case` and folds its events; returns them.
    fn step(def: &CaseDefinition, case: &mut Option<Case>, command: CaseCommand) -> Vec<CaseEvent> {
        let key = CaseKey::new(&KeyPrefix::parse("CLM").unwrap_or_else(|e| panic!("{e}")), 7);
        let ctx = Decision {
            definition: def,
            actor: "alice",
            key: Some(&key),
            now: Utc::now(),
        };
        let events = Case::decide(case.as_ref(), &command, &ctx).unwrap_or_else(|e| panic!("{e}"));
        let tenant = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        for e in &events {
            let meta = EventMeta {
                case_id: Uuid::nil(),
                tenant: &tenant,
                revision: case.as_ref().map_or(0, |c| c.revision) + 1,
                time: Utc::now(),
                actor: "alice",
            };
            *case = Case::fold(case.take(), &meta, e);
        }
        events
    }

    fn open(loss: &str) -> CaseCommand {
        CaseCommand::Open(OpenCase {
            definition: "insurance-claim".into(),
            title: "Bike stolen".into(),
            description: None,
            data: json!({"policyNumber": "POL-12345678", "lossType": loss, "lossDate": "2026-11-30", "estimatedAmount": 900}),
            priority: None,
            queue: None,
            requester: None,
            tags: vec![],
            confidential: false,
        })
    }

    #[test]
    fn opening_a_claim_asks_for_a_fraud_score_with_the_case_fields() {
        let def = claim();
        let mut case = None;
        let events = step(&def, &mut case, open("theft"));
        let event_id = Uuid::now_v7();
        let fired = fire(
            &def,
            event_id,
            &events[0],
            case.as_ref().unwrap_or_else(|| panic!("opened")),
        );
        assert_eq!(fired.len(), 1);
        let CaseCommand::CreateTask(t) = &fired[0].command else {
            panic!("{fired:?}")
        };
        assert_eq!(t.topic.as_deref(), Some("fraud-score"));
        assert_eq!(
            t.variables,
            Some(
                json!({"caseKey": "CLM-000007", "policyNumber": "POL-12345678", "lossType": "theft", "estimatedAmount": 900})
            )
        );
        assert_eq!(t.cause, Some(event_id));
        // The same event fires the same command and task ids.
        let again = fire(
            &def,
            event_id,
            &events[0],
            case.as_ref().unwrap_or_else(|| panic!("opened")),
        );
        assert_eq!(again, fired);
        assert_ne!(
            fire(
                &def,
                Uuid::now_v7(),
                &events[0],
                case.as_ref().unwrap_or_else(|| panic!("opened"))
            )[0]
            .command_id,
            fired[0].command_id
        );
    }

    #[test]
    fn the_police_report_is_asked_for_thefts_entering_assessment_only() {
        let def = claim();
        for (loss, want) in [("theft", 1), ("fire", 0)] {
            let mut case = None;
            step(&def, &mut case, open(loss));
            let moved = step(
                &def,
                &mut case,
                CaseCommand::MoveToStage(MoveToStage {
                    stage: "assessment".into(),
                }),
            );
            let fired = fire(
                &def,
                Uuid::now_v7(),
                &moved[0],
                case.as_ref().unwrap_or_else(|| panic!("opened")),
            );
            assert_eq!(fired.len(), want, "{loss}");
        }
    }

    #[test]
    fn rules_are_checked_at_import() {
        let tag = "do: [{ command: { type: case.tag, data: { tag: x } } }]";
        for (on, when, actions, why) in [
            ("stage-moved", "{}", tag, "is not an event type"),
            ("opened", "{ stage: [nowhere] }", tag, "is not a stage"),
            (
                "opened",
                "{}",
                "do: [{ command: { type: case.open, data: {} } }]",
                "not a command",
            ),
            (
                "opened",
                "{}",
                "do: [{ command: { type: task.cancel, data: { taskId: 00000000-0000-0000-0000-000000000000 } } }]",
                "not a command a rule may issue",
            ),
            (
                "opened",
                "{}",
                "do: [{ createTask: { kind: external, name: X } }]",
                "needs a topic",
            ),
            ("opened", "{}", "do: [{}]", "exactly one of"),
        ] {
            let base = CLAIM.split("\nautomation:").next().unwrap_or_default();
            let source =
                format!("{base}\nautomation:\n  - name: broken\n    on: {on}\n    when: {when}\n    {actions}\n");
            let err = CaseDefinition::parse_yaml(&source)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{on} {when} {actions}: {err}");
        }
    }

    #[test]
    fn depth_is_read_from_the_actor() {
        assert_eq!(depth_of("alice"), 0);
        assert_eq!(depth_of("automation:2"), 2);
        assert_eq!(depth_of("automationist"), 0);
    }
}
