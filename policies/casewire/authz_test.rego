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

bob := subject("bob", ["case-manager"], ["/queues/*"])

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

# --- The holes a Keycloak-shaped review found --------------------------------

keycloak_defaults := ["default-roles-acme", "offline_access", "uma_authorization"]

with_defaults(s) := object.union(s, {"roles": array.concat(s.roles, keycloak_defaults)})

test_a_requester_without_email_sees_only_what_they_created if {
	absent := object.remove(subject("norah", ["requester"], []), ["email"])
	null_email := object.union(subject("norah", ["requester"], []), {"email": null})
	every norah in [absent, null_email] {
		clauses := authz.filter.clauses with input as {"subject": norah}
		clauses == [{"createdBy": "norah", "confidential": false}]
		not decide(norah, "case.read", support_case).visible
		decide(norah, "case.read", object.union(support_case, {"createdBy": "norah"})).visible
		# A case without a requester must not match a requester without e-mail.
		not decide(norah, "case.read", object.union(support_case, {"requester": null})).visible
	}
}

test_an_empty_email_is_no_email if {
	empty := object.union(subject("emma", ["requester"], []), {"email": ""})
	authz.filter.clauses == [{"createdBy": "emma", "confidential": false}] with input as {"subject": empty}
}

test_keycloak_default_roles_grant_nothing_more if {
	r := with_defaults(rita)
	not decide(r, "case.comment.read.internal", support_case).allow
	not decide(r, "case.comment.read.internal", null).allow
	not {"assignee": "rita"} in authz.filter.clauses with input as {"subject": r}
	not decide(r, "case.read", object.union(billing_case, {"assignee": "rita"})).visible
	decide(r, "case.read", support_case).allow
	a := with_defaults(alice)
	decide(a, "case.comment.read.internal", support_case).allow
	decide(a, "case.assign", support_case).allow
}

test_default_roles_alone_are_no_role if {
	d := subject("dora", keycloak_defaults, ["/queues/support"])
	not decide(d, "definition.read", null).allow
	not decide(d, "events.stream", null).allow
	not decide(d, "command.read", null).allow
	not decide(d, "case.read", support_case).visible
	authz.filter.clauses == [] with input as {"subject": d}
}

test_a_manager_without_queue_groups_manages_no_queue if {
	m := subject("mona", ["case-manager"], [])
	not decide(m, "case.read", secret_case).visible
	decide(m, "case.read", support_case).visible
	not decide(m, "case.assign", support_case).allow
	not {} in authz.filter.clauses with input as {"subject": m}
}

test_every_queue_is_an_explicit_group if {
	decide(bob, "case.read", secret_case).allow
	decide(bob, "case.assign", billing_case).allow
	{} in authz.filter.clauses with input as {"subject": bob}
	w := subject("walt", ["case-worker"], ["/queues/*"])
	decide(w, "case.assign", billing_case).allow
	not decide(w, "case.read", secret_case).visible
	{"confidential": false} in authz.filter.clauses with input as {"subject": w}
	not {"queue": ["*"], "confidential": false} in authz.filter.clauses with input as {"subject": w}
}

# --- Definition access groups ------------------------------------------------

definitions := {
	"customer-complaint": {"view": ["/queues/complaints", "/queues/support"], "work": ["/queues/complaints"]},
	"insurance-claim": {"view": ["/queues/claims"], "work": ["/queues/claims"]},
	"ticket": {"view": [], "work": []},
}

decide_with(s, action, r) := d if {
	d := authz.decision with input as {"subject": s, "action": action, "resource": r, "definitions": definitions}
}

claim_case := object.union(support_case, {"definition": "insurance-claim"})

ticket_case := object.union(support_case, {"definition": "ticket"})

test_view_groups_narrow_what_queue_members_see if {
	# alice is in /queues/support: she sees complaints (a view group) but not claims.
	decide_with(alice, "case.read", support_case).visible
	not decide_with(alice, "case.read", claim_case).visible
	decide_with(alice, "case.read", ticket_case).visible
	clauses := authz.filter.clauses with input as {"subject": alice, "definitions": definitions}
	{"queue": ["support"], "confidential": false, "definition": ["customer-complaint", "ticket"]} in clauses
}

test_work_groups_narrow_who_changes_cases if {
	# Seeing a complaint through /queues/support is not working it.
	decide_with(alice, "case.read", support_case).allow
	not decide_with(alice, "case.assign", support_case).allow
	decide_with(alice, "case.assign", ticket_case).allow
	cleo := subject("cleo", ["case-worker"], ["/queues/support", "/queues/complaints"])
	decide_with(cleo, "case.assign", support_case).allow
}

test_definition_access_leaves_tenant_wide_roles_and_own_cases_alone if {
	decide_with(vera, "case.read", claim_case).allow
	decide_with(carol, "case.assign", claim_case).allow
	decide_with(bot, "case.tag", claim_case).allow
	decide_with(rita, "case.read", object.union(claim_case, {"requester": "rita@example.com"})).allow
	assigned := object.union(claim_case, {"assignee": "alice"})
	decide_with(alice, "case.read", assigned).visible
}

test_a_definition_unknown_to_the_map_is_hidden_from_queue_staff if {
	unknown := object.union(support_case, {"definition": "imported-elsewhere-just-now"})
	not decide_with(alice, "case.read", unknown).visible
	decide_with(vera, "case.read", unknown).visible
}

test_a_manager_without_groups_sees_only_unrestricted_definitions if {
	m := subject("mona", ["case-manager"], [])
	not decide_with(m, "case.read", support_case).visible
	decide_with(m, "case.read", ticket_case).visible
	not decide_with(m, "case.assign", ticket_case).allow
}

test_only_integrations_and_admins_deliver_mail if {
	allowed := authz.decision.allow with input as {"subject": bot, "action": "mail.ingest"}
	allowed
	decide(bot, "mail.ingest", support_case).allow
	decide(carol, "mail.ingest", support_case).allow
	not decide(bot, "mail.ingest", other_tenant_case).allow
	not decide(bob, "mail.ingest", support_case).allow
	not decide(rita, "mail.ingest", support_case).allow
	denied := authz.decision.allow with input as {"subject": alice, "action": "mail.ingest"}
	not denied
}

test_only_admins_keep_the_mail_quarantine if {
	admin := authz.decision.allow with input as {"subject": carol, "action": "mail.quarantine"}
	admin
	integration := authz.decision.allow with input as {"subject": bot, "action": "mail.quarantine"}
	not integration
	agent := authz.decision.allow with input as {"subject": alice, "action": "mail.quarantine"}
	not agent
}

test_nobody_records_an_sla_threshold_through_the_api if {
	admin := authz.decision.allow with input as {"subject": carol, "action": "sla.record"}
	not admin
	bot_may := authz.decision.allow with input as {"subject": bot, "action": "sla.record"}
	not bot_may
	"sla.record" in authz.scheduler_only_actions
}
