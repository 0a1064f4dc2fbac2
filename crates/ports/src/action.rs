//! The actions the policy decides: one enum, so a typo is a compile error
//! and the vocabulary the API, the policy and the docs share is one list.
//! The dotted names exist only at the wire (the policy's `input.action`).

use serde::{Serialize, Serializer};

/// Something a subject may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open a case (decided against the case to be).
    CaseOpen,
    CaseReviseDetails,
    CaseAssign,
    CaseUnassign,
    CaseRoute,
    CaseMoveToStage,
    CasePrioritize,
    /// Write an internal comment.
    CaseCommentInternal,
    /// Write a public comment (what a requester may).
    CaseCommentPublic,
    CaseTag,
    CaseUntag,
    CaseLink,
    CaseAttach,
    CaseDetach,
    CaseResolve,
    CaseClose,
    CaseReopen,
    /// Read a case's detail.
    CaseRead,
    /// Read a case's history.
    CaseHistory,
    /// With a case: read its internal comments; without: search and stream
    /// internal comments at all.
    CaseCommentReadInternal,
    /// Read someone else's command.
    CommandRead,
    /// Cancel someone else's pending command.
    CommandCancel,
    DefinitionRead,
    DefinitionImport,
    EventsStream,
    FileUpload,
    /// Create a task on a case.
    TaskCreate,
    /// Claim, unclaim and complete a human task (the domain checks that
    /// it is the subject's to take).
    TaskWork,
    /// Assign and cancel tasks, and set an external task's retries (which
    /// resolves its incident).
    TaskManage,
    /// A worker's side of an external task: lock, extend, unlock,
    /// complete, fail, raise a business error; and fetching tasks to lock.
    TaskExternal,
    /// Put mail into cases: the inbound webhook and the mailbox reader
    /// (an integration's right; the mail's sender is no caller).
    MailIngest,
    /// The mail quarantine: list and read held mail, release or drop it
    /// (an admin's right: held mail is unvetted, and a release puts it
    /// into a case).
    MailQuarantine,
    /// Record that an SLA clock reached its warning or its goal: the
    /// scheduler's alone (it issues through the platform, not the API), so
    /// the policy grants it to no caller.
    SlaRecord,
}

impl Action {
    /// Every action, for documents and tests.
    pub const ALL: &'static [Action] = &[
        Action::CaseOpen,
        Action::CaseReviseDetails,
        Action::CaseAssign,
        Action::CaseUnassign,
        Action::CaseRoute,
        Action::CaseMoveToStage,
        Action::CasePrioritize,
        Action::CaseCommentInternal,
        Action::CaseCommentPublic,
        Action::CaseTag,
        Action::CaseUntag,
        Action::CaseLink,
        Action::CaseAttach,
        Action::CaseDetach,
        Action::CaseResolve,
        Action::CaseClose,
        Action::CaseReopen,
        Action::CaseRead,
        Action::CaseHistory,
        Action::CaseCommentReadInternal,
        Action::CommandRead,
        Action::CommandCancel,
        Action::DefinitionRead,
        Action::DefinitionImport,
        Action::EventsStream,
        Action::FileUpload,
        Action::TaskCreate,
        Action::TaskWork,
        Action::TaskManage,
        Action::TaskExternal,
        Action::MailIngest,
        Action::MailQuarantine,
        Action::SlaRecord,
    ];

    /// The name the policy sees.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::CaseOpen => "case.open",
            Action::CaseReviseDetails => "case.reviseDetails",
            Action::CaseAssign => "case.assign",
            Action::CaseUnassign => "case.unassign",
            Action::CaseRoute => "case.route",
            Action::CaseMoveToStage => "case.moveToStage",
            Action::CasePrioritize => "case.prioritize",
            Action::CaseCommentInternal => "case.comment.internal",
            Action::CaseCommentPublic => "case.comment.public",
            Action::CaseTag => "case.tag",
            Action::CaseUntag => "case.untag",
            Action::CaseLink => "case.link",
            Action::CaseAttach => "case.attach",
            Action::CaseDetach => "case.detach",
            Action::CaseResolve => "case.resolve",
            Action::CaseClose => "case.close",
            Action::CaseReopen => "case.reopen",
            Action::CaseRead => "case.read",
            Action::CaseHistory => "case.history",
            Action::CaseCommentReadInternal => "case.comment.read.internal",
            Action::CommandRead => "command.read",
            Action::CommandCancel => "command.cancel",
            Action::DefinitionRead => "definition.read",
            Action::DefinitionImport => "definition.import",
            Action::EventsStream => "events.stream",
            Action::FileUpload => "file.upload",
            Action::TaskCreate => "task.create",
            Action::TaskWork => "task.work",
            Action::TaskManage => "task.manage",
            Action::TaskExternal => "task.external",
            Action::MailIngest => "mail.ingest",
            Action::MailQuarantine => "mail.quarantine",
            Action::SlaRecord => "sla.record",
        }
    }

    /// The action a command needs: its own, except that comments are split
    /// by visibility (a requester may write public ones only).
    pub fn of(command: &casewire_domain::CaseCommand) -> Action {
        use casewire_domain::CaseCommand as C;
        use casewire_domain::command::Visibility;
        match command {
            C::Open(_) => Action::CaseOpen,
            C::ReviseDetails(_) => Action::CaseReviseDetails,
            C::Assign(_) => Action::CaseAssign,
            C::Unassign(_) => Action::CaseUnassign,
            C::Route(_) => Action::CaseRoute,
            C::MoveToStage(_) => Action::CaseMoveToStage,
            C::Prioritize(_) => Action::CasePrioritize,
            C::Comment(c) => match c.visibility {
                Visibility::Public => Action::CaseCommentPublic,
                Visibility::Internal => Action::CaseCommentInternal,
            },
            C::Tag(_) => Action::CaseTag,
            C::Untag(_) => Action::CaseUntag,
            C::Link(_) => Action::CaseLink,
            C::Attach(_) => Action::CaseAttach,
            C::Detach(_) => Action::CaseDetach,
            C::Resolve(_) => Action::CaseResolve,
            C::Close(_) => Action::CaseClose,
            C::Reopen(_) => Action::CaseReopen,
            C::CreateTask(_) => Action::TaskCreate,
            C::ClaimTask(_) | C::UnclaimTask(_) => Action::TaskWork,
            C::CompleteTask(c) if c.worker_id.is_some() => Action::TaskExternal,
            C::CompleteTask(_) => Action::TaskWork,
            C::AssignTask(_) | C::CancelTask(_) | C::SetTaskRetries(_) => Action::TaskManage,
            C::LockTask(_) | C::ExtendTaskLock(_) | C::UnlockTask(_) | C::FailTask(_) | C::RaiseTaskError(_) => {
                Action::TaskExternal
            }
            C::ReceiveEmail(_) | C::RecordBounce(_) | C::RecordEmailSent(_) => Action::MailIngest,
            C::RecordSla(_) => Action::SlaRecord,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_action_is_listed() {
        let mut names: Vec<&str> = Action::ALL.iter().map(Action::as_str).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }

    #[test]
    fn the_policy_names_every_action_it_decides() {
        // The shipped policy is the other side of this vocabulary: every
        // action must appear in it, or no rule can ever allow it.
        let source = include_str!("../../../policies/casewire/authz.rego");
        // In rules, not in the comments that document the input.
        let rules: Vec<&str> = source.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        let rules = rules.join("\n");
        for action in Action::ALL {
            assert!(
                rules.contains(&format!("\"{action}\"")),
                "{action} is in no rule of authz.rego"
            );
        }
    }
}
