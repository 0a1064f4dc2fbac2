# Casewire authorization: one policy decides single actions and yields the
# filter that lists and streams apply, so the two can never disagree.
#
# input = {
#   "subject":  {"sub", "username", "email" (verified only; absent when none),
#                "roles": [], "groups": [], "tenant"},
#   "action":   "case.read" | "case.open" | "case.assign" | ... | "definition.import",
#   "resource": {"tenant", "queue", "assignee", "requester", "createdBy",
#                "definition", "stage", "confidential"}   (absent for tenant-wide actions)
# }
#
# Outputs (data.casewire.authz):
#   decision = {"allow": bool, "visible": bool}
#     visible: the subject may know the case exists (else the API says 404);
#     allow:   the subject may do the action (else 403 CW-FORBIDDEN).
#   filter   = {"tenant": t, "clauses": [clause, ...]}
#     a case is visible when it is in the tenant and matches any clause; a
#     clause is an AND of the fields present: queue (one of), confidential,
#     assignee, requester, createdBy. {} matches every case of the tenant.
package casewire.authz

import rego.v1

roles := {r | some r in input.subject.roles}

# Queue membership is a group /queues/<name>; the group /queues/* is every
# queue. Having no queue groups means no queue: "all" is always an explicit
# grant, so a missing group mapper never widens anyone's access.
queues := {substring(g, 8, -1) | some g in input.subject.groups; startswith(g, "/queues/"); g != "/queues/*"}

all_queues if "/queues/*" in input.subject.groups

queue_list := sort([q | some q in queues])

is_admin if "case-admin" in roles

is_manager if "case-manager" in roles

is_worker if "case-worker" in roles

is_viewer if "case-viewer" in roles

is_requester if "requester" in roles

is_integration if "integration" in roles

# The organisation's own people and systems. Keycloak gives every user
# default roles too (default-roles-<realm>, offline_access,
# uma_authorization), so a right comes from holding a role, never from
# lacking the others.
staff_roles := {"case-admin", "case-manager", "case-worker", "case-viewer", "integration"}

is_staff if {
	some r in roles
	r in staff_roles
}

# Anyone with a Casewire role (default roles alone are no role of ours).
is_member if is_staff

is_member if is_requester

# --- Definition access groups ---------------------------------------------
#
# input.definitions maps each definition of the tenant to its access groups
# ({"view": [...], "work": [...]}, from its newest version). A definition
# that names groups narrows the group-scoped staff (managers and workers):
# they see its cases only as members of a view or work group, and change
# them only as members of a work group. Tenant-wide roles (admin, viewer,
# integration), requesters' own cases and assignments are not narrowed.
# Without input.definitions (policy unit tests) nothing is narrowed; with
# it, a definition missing from the map is hidden from group-scoped staff.

subject_groups := {g | some g in input.subject.groups}

has_definitions if {
	_ = input.definitions
}

may_view_definition(a) if count(a.view) + count(a.work) == 0

may_view_definition(a) if {
	some g in array.concat(a.view, a.work)
	g in subject_groups
}

may_work_definition(a) if count(a.work) == 0

may_work_definition(a) if {
	some g in a.work
	g in subject_groups
}

viewable_definitions := sort([d | some d, a in input.definitions; may_view_definition(a)])

scoped(clause) := object.union(clause, {"definition": viewable_definitions}) if has_definitions

scoped(clause) := clause if not has_definitions

definition_lets_work if not has_definitions

definition_lets_work if may_work_definition(input.definitions[input.resource.definition])

# A requester's e-mail counts only when the token carries a verified one
# (the API drops unverified and empty addresses before asking).
requester_email := e if {
	e := input.subject.email
	is_string(e)
	e != ""
}

# --- Visibility, as clauses -------------------------------------------------

clauses contains {} if is_admin

clauses contains scoped({}) if {
	is_manager
	all_queues
}

clauses contains scoped({"confidential": false}) if is_manager

clauses contains scoped({"queue": queue_list}) if {
	is_manager
	count(queues) > 0
}

clauses contains scoped({"confidential": false}) if {
	is_worker
	all_queues
}

clauses contains scoped({"queue": queue_list, "confidential": false}) if {
	is_worker
	count(queues) > 0
}

clauses contains {"confidential": false} if is_viewer

clauses contains {"confidential": false} if is_integration

clauses contains {"requester": requester_email, "confidential": false} if is_requester

clauses contains {"createdBy": input.subject.username, "confidential": false} if is_requester

# Whoever on the staff a case is assigned to sees it, confidential or not.
clauses contains {"assignee": input.subject.username} if is_staff

# A clause that admits everything makes the others redundant.
filter := {"tenant": input.subject.tenant, "clauses": [{}]} if {} in clauses

filter := {"tenant": input.subject.tenant, "clauses": [c | some c in clauses]} if not {} in clauses

matches(clause, r) if {
	every field, want in clause {
		field_matches(field, want, r)
	}
}

field_matches("queue", want, r) if r.queue in want

field_matches("definition", want, r) if r.definition in want

field_matches("confidential", want, r) if object.get(r, "confidential", false) == want

field_matches(field, want, r) if {
	not field in {"queue", "confidential", "definition"}
	r[field] == want
}

visible if {
	input.resource.tenant == input.subject.tenant
	some clause in clauses
	matches(clause, input.resource)
}

# --- Actions ----------------------------------------------------------------

read_actions := {"case.read", "case.history"}

work_actions := {
	"case.reviseDetails", "case.assign", "case.unassign", "case.route", "case.moveToStage", "case.prioritize",
	"case.comment.internal", "case.comment.public", "case.tag", "case.untag", "case.link",
	"case.resolve", "case.close", "case.reopen", "case.attach", "case.detach",
	"task.create", "task.work", "task.manage", "task.external",
}

# Integrations run external-task workers: they lock and finish the tasks of
# the cases they see, and create tasks, but do not claim people's work.
integration_actions := {
	"case.reviseDetails", "case.comment.internal", "case.comment.public", "case.tag", "case.untag", "case.link",
	"case.attach", "task.create", "task.external",
}

# Who may change a visible case.
may_work if is_admin

may_work if {
	is_manager
	all_queues
	definition_lets_work
}

may_work if {
	is_worker
	all_queues
	definition_lets_work
}

may_work if {
	is_manager
	input.resource.queue in queues
	definition_lets_work
}

may_work if {
	is_worker
	input.resource.queue in queues
	definition_lets_work
}

may_work if {
	is_worker
	input.resource.assignee == input.subject.username
}

allow if {
	input.action in read_actions
	visible
}

# Internal comments stay inside the organisation: a staff right, by role.
allow if {
	input.action == "case.comment.read.internal"
	visible
	is_staff
}

# Without a case: may the subject search (and stream) internal comments at all?
allow if {
	input.action == "case.comment.read.internal"
	object.get(input, "resource", null) == null
	is_staff
}

allow if {
	input.action in work_actions
	visible
	may_work
}

# Cancelling someone else's pending command: whoever may work on the case.
allow if {
	input.action == "command.cancel"
	visible
	may_work
}

allow if {
	input.action in integration_actions
	visible
	is_integration
}

# Mail into cases (the inbound webhook, the mailbox reader): the caller is
# the integration that delivers it, never the mail's sender, so this is an
# integration's or an admin's right. Without a case: may the caller deliver
# mail at all.
mail_ingester if is_integration

mail_ingester if is_admin

allow if {
	input.action == "mail.ingest"
	object.get(input, "resource", null) == null
	mail_ingester
}

allow if {
	input.action == "mail.ingest"
	visible
	mail_ingester
}

# The mail quarantine (list, read, release, drop): held mail is unvetted
# and a release puts it into a case, so it is an admin's, not the
# delivering integration's.
allow if {
	input.action == "mail.quarantine"
	is_admin
}

# SLA records are the SLA scheduler's, which issues them through the
# platform, not the API: no caller may record one, so nobody can mark a
# case's clock warned or breached (or spend its record) by hand.
scheduler_only_actions := {"sla.record"}

# Requesters write public comments and add files (photos, forms) to their cases.
allow if {
	input.action in {"case.comment.public", "case.attach"}
	visible
	is_requester
}

# Uploading a file (attaching it is decided on the case). Viewers only read.
allow if {
	input.action == "file.upload"
	some r in roles
	r in {"case-admin", "case-manager", "case-worker", "requester", "integration"}
}

# Opening: everyone who works with cases, in their own tenant; workers only
# into their queues.
allow if {
	input.action == "case.open"
	input.resource.tenant == input.subject.tenant
	opener
}

opener if is_admin

opener if is_manager

opener if is_requester

opener if is_integration

opener if {
	is_worker
	input.resource.queue in queues
}

allow if {
	input.action in {"definition.read", "events.stream", "command.read"}
	is_member
}

allow if {
	input.action == "definition.import"
	is_admin
}

default allow := false

default visible := false

decision := {"allow": allow, "visible": visible}

# --- Grants: the same decisions, compiled once per subject ------------------
#
# The API asks for `grants` once per subject, definitions and policy
# version, and then decides each action in Rust from it, in about a
# microsecond instead of a full evaluation. So `grants` must say exactly
# what `decision` says: a property test compares the two on random
# subjects, cases and actions. Only this file, unchanged, is decided from
# its grants; once you edit it, every decision is a full evaluation (a
# sample could not prove your grants still match your rules).
#
# grants = {
#   "visible":  the filter's clauses (a case of the subject's tenant is
#               visible when it matches one),
#   "withoutCase": the actions allowed without a case,
#   "onCase":   [{"action", "needs": "visible" | "tenant" | "nothing",
#                 "clause"}]: an action on a case is allowed when one entry
#               for it has what it needs and its clause matches the case.
# }
# Input: the subject and definitions, "resource": null, and "actions", the
# names of every action the API may ask about.

definition_work_list := sort([d | some d, a in input.definitions; may_work_definition(a)])

work_scoped(clause) := object.union(clause, {"definition": definition_work_list}) if has_definitions

work_scoped(clause) := clause if not has_definitions

# One clause per `may_work` rule, in the same order.
work_clauses contains {} if is_admin

work_clauses contains work_scoped({}) if {
	is_manager
	all_queues
}

work_clauses contains work_scoped({}) if {
	is_worker
	all_queues
}

work_clauses contains work_scoped({"queue": queue_list}) if is_manager

work_clauses contains work_scoped({"queue": queue_list}) if is_worker

work_clauses contains {"assignee": input.subject.username} if is_worker

# One entry per `allow` rule that reads the case.
case_grants contains {"action": a, "needs": "visible", "clause": {}} if some a in read_actions

case_grants contains {"action": "case.comment.read.internal", "needs": "visible", "clause": {}} if is_staff

case_grants contains {"action": a, "needs": "visible", "clause": c} if {
	some a in work_actions | {"command.cancel"}
	some c in work_clauses
}

case_grants contains {"action": a, "needs": "visible", "clause": {}} if {
	is_integration
	some a in integration_actions
}

case_grants contains {"action": a, "needs": "visible", "clause": {}} if {
	is_requester
	some a in {"case.comment.public", "case.attach"}
}

case_grants contains {"action": "case.open", "needs": "tenant", "clause": {}} if {
	some r in {"case-admin", "case-manager", "requester", "integration"}
	r in roles
}

case_grants contains {"action": "case.open", "needs": "tenant", "clause": {"queue": queue_list}} if is_worker

# The rules that do not read the case allow the same with or without one.
case_grants contains {"action": a, "needs": "nothing", "clause": {}} if {
	some a in input.actions
	not a in {"case.comment.read.internal", "mail.ingest"}
	allow with input.action as a
}

case_grants contains {"action": "mail.ingest", "needs": "visible", "clause": {}} if mail_ingester

grants := {
	"visible": [c | some c in clauses],
	"withoutCase": sort([a | some a in input.actions; allow with input.action as a]),
	"onCase": [g | some g in case_grants],
}
