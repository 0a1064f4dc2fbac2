# Casewire authorization: one policy decides single actions and yields the
# filter that lists and streams apply, so the two can never disagree.
#
# input = {
#   "subject":  {"sub", "username", "email", "roles": [], "groups": [], "tenant"},
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

# Queue membership is a group /queues/<name>.
queues := {substring(g, 8, -1) | some g in input.subject.groups; startswith(g, "/queues/")}

is_admin if "case-admin" in roles

is_manager if "case-manager" in roles

is_worker if "case-worker" in roles

is_viewer if "case-viewer" in roles

is_requester if "requester" in roles

is_integration if "integration" in roles

# A manager with no queue groups manages every queue.
manages_all if {
	is_manager
	count(queues) == 0
}

# --- Visibility, as clauses -------------------------------------------------

clauses contains {} if is_admin

clauses contains {} if manages_all

clauses contains {"confidential": false} if is_manager

clauses contains {"queue": sort([q | some q in queues])} if {
	is_manager
	count(queues) > 0
}

clauses contains {"queue": sort([q | some q in queues]), "confidential": false} if {
	is_worker
	count(queues) > 0
}

clauses contains {"confidential": false} if is_viewer

clauses contains {"confidential": false} if is_integration

clauses contains {"requester": input.subject.email, "confidential": false} if {
	is_requester
	input.subject.email
}

clauses contains {"createdBy": input.subject.username, "confidential": false} if is_requester

# Whoever a case is assigned to sees it, confidential or not.
clauses contains {"assignee": input.subject.username} if {
	count(roles) > 0
	not is_requester_only
}

is_requester_only if {
	is_requester
	count(roles) == 1
}

# A clause that admits everything makes the others redundant.
filter := {"tenant": input.subject.tenant, "clauses": [{}]} if {} in clauses

filter := {"tenant": input.subject.tenant, "clauses": [c | some c in clauses]} if not {} in clauses

matches(clause, r) if {
	every field, want in clause {
		field_matches(field, want, r)
	}
}

field_matches("queue", want, r) if r.queue in want

field_matches("confidential", want, r) if object.get(r, "confidential", false) == want

field_matches(field, want, r) if {
	not field in {"queue", "confidential"}
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
}

integration_actions := {
	"case.reviseDetails", "case.comment.internal", "case.comment.public", "case.tag", "case.untag", "case.link",
	"case.attach",
}

# Who may change a visible case.
may_work if is_admin

may_work if {
	is_manager
	manages_all
}

may_work if {
	is_manager
	input.resource.queue in queues
}

may_work if {
	is_worker
	input.resource.queue in queues
}

may_work if {
	is_worker
	input.resource.assignee == input.subject.username
}

allow if {
	input.action in read_actions
	visible
}

# Internal comments stay inside the organisation.
allow if {
	input.action == "case.comment.read.internal"
	visible
	not is_requester_only
}

# Without a case: may the subject search (and stream) internal comments at all?
allow if {
	input.action == "case.comment.read.internal"
	object.get(input, "resource", null) == null
	count(roles) > 0
	not is_requester_only
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
	count(roles) > 0
}

allow if {
	input.action == "definition.import"
	is_admin
}

default allow := false

default visible := false

decision := {"allow": allow, "visible": visible}
