# Tests of the authorization policy: `casewire policy test` runs every
# test_* rule (tests/run does too).
package casewire.authz_test

import data.casewire.authz
import rego.v1

subject(username, roles, groups) := {
	"sub": concat("", ["id-", username]),
	"username": username,
	"email": concat("", [username, "@example.com"]),
	"roles": roles,
	"groups": groups,
	"tenant": "acme",
}

alice := subject("alice", ["case-worker"], ["/queues/support"])

bob := subject("bob", ["case-manager"], [])

carol := subject("carol", ["case-admin"], [])

vera := subject("vera", ["case-viewer"], [])

rita := subject("rita", ["requester"], [])

bot := subject("bot", ["integration"], [])

support_case := {
	"tenant": "acme", "queue": "support", "assignee": null, "requester": "rita@example.com",
	"createdBy": "bot", "definition": "customer-complaint", "stage": "new", "confidential": false,
}

billing_case := object.union(support_case, {"queue": "billing", "requester": "someone@example.com"})

secret_case := object.union(support_case, {"confidential": true})

other_tenant_case := object.union(support_case, {"tenant": "globex"})

decide(s, action, r) := d if {
	d := authz.decision with input as {"subject": s, "action": action, "resource": r}
}

test_worker_reads_and_works_cases_of_their_queue if {
	decide(alice, "case.read", support_case) == {"allow": true, "visible": true}
	decide(alice, "case.assign", support_case).allow
	decide(alice, "case.comment.internal", support_case).allow
}

test_worker_does_not_see_other_queues if {
	decide(alice, "case.read", billing_case) == {"allow": false, "visible": false}
}

test_worker_sees_a_case_assigned_to_them_anywhere if {
	assigned := object.union(billing_case, {"assignee": "alice", "confidential": true})
	decide(alice, "case.read", assigned).allow
	decide(alice, "case.comment.internal", assigned).allow
}

test_confidential_cases_are_for_assignee_managers_and_admins if {
	not decide(alice, "case.read", secret_case).visible
	not decide(vera, "case.read", secret_case).visible
	not decide(rita, "case.read", secret_case).visible
	not decide(bot, "case.read", secret_case).visible
	decide(bob, "case.read", secret_case).allow
	decide(carol, "case.read", secret_case).allow
}

test_a_queue_manager_sees_confidential_cases_only_of_their_queues if {
	qm := subject("quinn", ["case-manager"], ["/queues/billing"])
	decide(qm, "case.read", object.union(billing_case, {"confidential": true})).allow
	not decide(qm, "case.read", secret_case).visible
	decide(qm, "case.read", support_case).visible
	not decide(qm, "case.assign", support_case).allow
}

test_viewer_reads_but_never_changes if {
	decide(vera, "case.read", support_case) == {"allow": true, "visible": true}
	decide(vera, "case.history", billing_case).allow
	decide(vera, "case.comment.internal", support_case) == {"allow": false, "visible": true}
	not decide(vera, "case.open", support_case).allow
}

test_requester_sees_own_cases_and_only_public_comments if {
	decide(rita, "case.read", support_case).allow
	decide(rita, "case.comment.public", support_case).allow
	not decide(rita, "case.comment.internal", support_case).allow
	not decide(rita, "case.comment.read.internal", support_case).allow
	not decide(rita, "case.assign", support_case).allow
	not decide(rita, "case.read", billing_case).visible
}

test_integration_comments_and_tags_but_does_not_move_cases if {
	decide(bot, "case.comment.internal", support_case).allow
	decide(bot, "case.tag", support_case).allow
	not decide(bot, "case.moveToStage", support_case).allow
	decide(bot, "case.open", support_case).allow
}

test_nobody_sees_another_tenant if {
	every s in [alice, bob, carol, vera, rita, bot] {
		decide(s, "case.read", other_tenant_case) == {"allow": false, "visible": false}
	}
}

test_only_admins_import_definitions if {
	decide(carol, "definition.import", null).allow
	not decide(bob, "definition.import", null).allow
	decide(alice, "definition.read", null).allow
}

test_no_roles_no_access if {
	nobody := subject("nobody", [], [])
	not decide(nobody, "case.read", support_case).visible
	not decide(nobody, "definition.read", null).allow
	authz.filter.clauses == [] with input as {"subject": nobody}
}

test_filters_are_clauses_per_role if {
	authz.filter == {"tenant": "acme", "clauses": [{}]} with input as {"subject": carol}
	{"queue": ["support"], "confidential": false} in authz.filter.clauses with input as {"subject": alice}
	{"assignee": "alice"} in authz.filter.clauses with input as {"subject": alice}
	count(authz.filter.clauses) == 2 with input as {"subject": alice}
	{"requester": "rita@example.com", "confidential": false} in authz.filter.clauses with input as {"subject": rita}
	not {"assignee": "rita"} in authz.filter.clauses with input as {"subject": rita}
}

test_internal_comments_are_searchable_by_staff_only if {
	decide(alice, "case.comment.read.internal", null).allow
	decide(vera, "case.comment.read.internal", null).allow
	not decide(rita, "case.comment.read.internal", null).allow
	not decide(subject("nobody", [], []), "case.comment.read.internal", null).allow
}

test_cancelling_commands_follows_who_may_work_the_case if {
	decide(alice, "command.cancel", support_case).allow
	not decide(alice, "command.cancel", billing_case).allow
	not decide(vera, "command.cancel", support_case).allow
	not decide(rita, "command.cancel", support_case).allow
}

test_files_are_uploaded_by_all_but_viewers_and_attached_like_work if {
	decide(alice, "file.upload", null).allow
	decide(rita, "file.upload", null).allow
	decide(bot, "file.upload", null).allow
	not decide(vera, "file.upload", null).allow
	decide(alice, "case.attach", support_case).allow
	decide(rita, "case.attach", support_case).allow
	not decide(rita, "case.detach", support_case).allow
	not decide(vera, "case.attach", support_case).allow
	not decide(alice, "case.attach", billing_case).allow
}
