"""The OpenAPI 3.1 document for /api/v1, built from the same models that validate input."""

from __future__ import annotations

from functools import cache

from models.public_support import (
    SupportClassCreate,
    SupportLinkCreate,
    SupportReason,
    UnusualGrantCreate,
)
from models.schemas import (
    ActiveSet,
    AffiliationCreate,
    AppealCreate,
    CampaignCreate,
    ContactPreferences,
    DonorCreate,
    DonorCreateConfirmed,
    FundCreate,
    GiftCorrectionCreate,
    GiftCreate,
    GiftVoid,
    InKindCreate,
    InteractionCreate,
    MatchVerdictCreate,
    MergeCreate,
    OrganizationCreate,
    OrganizationPatch,
    PledgeCancel,
    PledgeCreate,
    PledgeSchedule,
    RecurringAmount,
    RefundCreate,
    RelationshipCreate,
    RelationshipEnd,
    ReviewCreate,
    RosterEntryCreate,
    SegmentCreate,
    TagSet,
    TaskCreate,
    TitleReview,
)

INPUTS = [AffiliationCreate, DonorCreate, GiftCreate, InKindCreate, OrganizationCreate,
          OrganizationPatch, PledgeCreate, RefundCreate, ReviewCreate, DonorCreateConfirmed,
          MergeCreate, TitleReview, MatchVerdictCreate, InteractionCreate, TaskCreate,
          ContactPreferences, SupportLinkCreate, SupportClassCreate, UnusualGrantCreate,
          SupportReason, CampaignCreate, AppealCreate, FundCreate, ActiveSet,
          RelationshipCreate, RelationshipEnd, GiftVoid, GiftCorrectionCreate, RecurringAmount,
          SegmentCreate, TagSet]

ERROR = {"$ref": "#/components/schemas/Error"}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}

# method, path, summary, permission, request model, success status, path params, query params
OPERATIONS = [
    ("get", "/jobs/{id}", "A background job's status, progress and result", "read", None,
     200, [ID], []),
    ("post", "/organizations", "Create an organisation", "organizations.write",
     OrganizationCreate, 201, [], []),
    ("get", "/organizations", "List organisations", "read", None, 200, [],
     [("covered_lab", {"type": "string", "enum": ["true", "false", "1", "0"]})]),
    ("get", "/organizations/{id}", "Get an organisation", "read", None, 200, [ID], []),
    ("post", "/donors", "Create a donor (409 with existing_donor_id if a person's e-mail is "
     "already a donor's)", "donors.write", DonorCreateConfirmed, 201, [], []),
    ("post", "/donors/{id}/merge", "Merge another donor record into this one (re-screens "
     "affected gifts)", "review", MergeCreate, 200, [ID], []),
    ("post", "/affiliations/{id}/title-review", "Confirm or clear a senior-sounding title",
     "review", TitleReview, 200, [ID], []),
    ("get", "/donors", "Search donors", "read", None, 200, [],
     [("q", {"type": "string"}), ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
      ("after_id", {"type": "integer", "minimum": 0})]),
    ("get", "/donors/{id}", "Get a donor with affiliations", "read", None, 200, [ID], []),
    ("post", "/donors/{id}/affiliations", "Add an affiliation (re-screens affected gifts)",
     "affiliations.write", AffiliationCreate, 201, [ID], []),
    ("put", "/affiliations/{id}", "Change an affiliation (re-screens affected gifts)",
     "affiliations.write", AffiliationCreate, 200, [ID], []),
    ("post", "/gifts", "Record a gift through the policy", "gifts.write", GiftCreate, 201, [], []),
    ("post", "/gifts/preview", "The decision a gift would get, recording nothing",
     "gifts.write", GiftCreate, 200, [], []),
    ("get", "/gifts", "List gifts", "read", None, 200, [],
     [("status", {"type": "string", "enum": ["pending", "accepted", "held", "rejected", "failed"]}),
      ("donor_id", {"type": "integer"}),
      ("campaign_id", {"type": "integer"}), ("appeal_id", {"type": "integer"}),
      ("fund_id", {"type": "integer"}),
      ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
      ("after_id", {"type": "integer", "minimum": 0})]),
    ("get", "/gifts/{id}", "Get a gift with every decision, oldest first", "read", None, 200,
     [ID], []),
    ("post", "/gifts/{id}/refund", "Refund a gift in full or in part", "refunds", RefundCreate,
     201, [ID], []),
    ("post", "/gifts/{id}/review", "Decide a held gift", "review", ReviewCreate, 201, [ID], []),
    ("post", "/gifts/{id}/override", "Ask to accept a rejected gift (needs a second reviewer)",
     "review", ReviewCreate, 201, [ID], []),
    ("post", "/overrides/{id}/approve", "Approve an override (a second reviewer)", "review",
     None, 201, [ID], []),
    ("post", "/overrides/{id}/decline", "Decline an override", "review", None, 200, [ID], []),
    ("post", "/pledges", "Create a pledge with instalments", "pledges.write", PledgeCreate, 201,
     [], []),
    ("get", "/pledges/{id}", "Get a pledge with its schedule", "read", None, 200, [ID], []),
    ("post", "/pledges/{id}/cancel", "Cancel an active pledge (what is left stops being due)",
     "pledges.write", PledgeCancel, 200, [ID], []),
    ("put", "/pledges/{id}/schedule", "Replace an active pledge's instalment schedule",
     "pledges.write", PledgeSchedule, 200, [ID], []),
    ("post", "/in-kind", "Record an in-kind arrangement", "in_kind.write", InKindCreate, 201,
     [], []),
    ("get", "/in-kind", "List in-kind arrangements", "read", None, 200, [], []),
    ("get", "/in-kind/{id}", "Get an in-kind arrangement", "read", None, 200, [ID], []),
    ("put", "/in-kind/{id}", "Edit or end an in-kind arrangement (what would hide disclosed "
     "support from a lab waits for a second person: 202)", "in_kind.write", InKindCreate, 200,
     [ID], []),
    ("get", "/compliance/summary", "Lab-employee share, headroom and breach as of a date",
     "read", None, 200, [], [("as_of", {"type": "string", "format": "date"})]),
    ("get", "/compliance/series",
     "The lab-employee share day by day, breach periods and the monthly funding mix", "read",
     None, 200, [], [("from", {"type": "string", "format": "date"}),
                     ("to", {"type": "string", "format": "date"})]),
    ("get", "/disclosures/conflicts",
     "The conflict-of-interest disclosure for a period, computed from the ledger now", "read",
     None, 200, [], [("from", {"type": "string", "format": "date"}),
                     ("to", {"type": "string", "format": "date"})]),
    ("get", "/audit/verify", "Verify the audit hash chain", "read", None, 200, [], []),
    # The two-person rule for changes that weaken enforcement (202 when a part waits).
    ("patch", "/organizations/{id}", "Change an organisation (weakening parts wait for approval)",
     "organizations.write", OrganizationPatch, 200, [ID], []),
    ("delete", "/affiliations/{id}", "Delete an affiliation (at a covered organisation: waits)",
     "affiliations.write", None, 200, [ID], []),
    ("get", "/changes", "List changes waiting for (or decided by) a second person", "read", None,
     200, [], [("status", {"type": "string", "enum": ["pending", "approved", "declined", "expired"]})]),
    ("get", "/changes/{id}", "Get a change (a policy version's with its 365-day replay)", "read",
     None, 200, [ID], []),
    ("post", "/changes/{id}/approve", "Approve a change (a second reviewer or admin)", "review",
     None, 200, [ID], []),
    ("post", "/changes/{id}/decline", "Decline a change, or withdraw one's own",
     "changes.decline", None, 200, [ID], []),
    ("get", "/donors/{id}/matches",
     "Records that may be the same person as this donor (lab-affiliated), with scores", "read",
     None, 200, [ID], []),
    ("post", "/donors/{id}/matches/different",
     "Record that the donor and another record are different people", "review",
     MatchVerdictCreate, 201, [ID], []),
    ("post", "/donors/{id}/matches/same",
     "Record that the donor and another record are the same person (merge, or the roster "
     "entry's role onto the donor)", "review", MatchVerdictCreate, 201, [ID], []),
    ("post", "/rosters", "Import a roster of people at labs (CSV)", "review", None, 201, [], []),
    ("get", "/rosters", "List roster entries", "read", None, 200, [],
     [("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
      ("after_id", {"type": "integer", "minimum": 0})]),
    # The relationship beyond money (app/api/contacts.py).
    ("get", "/donors/{id}/interactions", "A donor's interactions, newest first", "read", None,
     200, [ID], [("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                 ("before_id", {"type": "integer", "minimum": 1})]),
    ("post", "/donors/{id}/interactions", "Record a call, meeting, e-mail, event, letter or note",
     "contacts.write", InteractionCreate, 201, [ID], []),
    ("put", "/donors/{id}/contact-preferences", "Set how the donor agreed to be contacted",
     "donors.write", ContactPreferences, 200, [ID], []),
    ("get", "/donors/{id}/giving", "Giving summary: lifetime, this year, last year, first, "
     "last and largest gift", "read", None, 200, [ID], []),
    ("get", "/tasks", "Tasks (the requester's open tasks by default)", "read", None, 200, [],
     [("status", {"type": "string", "enum": ["open", "done", "all"]}),
      ("assignee_id", {"type": "integer", "minimum": 1}),
      ("donor_id", {"type": "integer", "minimum": 1}),
      ("limit", {"type": "integer", "minimum": 1, "maximum": 500})]),
    ("post", "/tasks", "Create a task for a staff member", "contacts.write", TaskCreate, 201,
     [], []),
    ("post", "/tasks/{id}/complete", "Mark a task done", "contacts.write", None, 200, [ID], []),
    # Campaigns, appeals and funds (app/api/campaigns.py).
    *[op for kind, plural, model in (("campaign", "campaigns", CampaignCreate),
                                      ("appeal", "appeals", AppealCreate),
                                      ("fund", "funds", FundCreate))
      for op in (
          ("post", f"/{plural}", f"Create a {kind}", "campaigns.write", model, 201, [], []),
          ("get", f"/{plural}", f"List {plural} with what each raised (accepted cash net of "
           "refunds) against its goal", "read", None, 200, [],
           [("from", {"type": "string", "format": "date"}),
            ("to", {"type": "string", "format": "date"})]),
          ("get", f"/{plural}/{{id}}", f"Get a {kind} with its progress", "read", None, 200,
           [ID], []),
          ("put", f"/{plural}/{{id}}/active", f"Close or reopen a {kind}", "campaigns.write",
           ActiveSet, 200, [ID], []))],
    # The public-support test (Form 990 Schedule A, Part II): docs/public-support.md.
    ("get", "/public-support", "The public-support test for a tax year, every figure with "
     "its gifts (gift_ids=false: without the gift id lists)", "read", None, 200, [],
     [("year", {"type": "integer"}), ("gift_ids", {"type": "string", "enum": ["true", "false"]})]),
    ("get", "/public-support/schedule-b", "The Schedule B worksheet for a year (copy=staff, "
     "the default, with names and addresses: also needs the exports permission, else 403, and "
     "each view is audited; copy=public without)", "read", None, 200, [],
     [("year", {"type": "integer"}), ("copy", {"type": "string", "enum": ["staff", "public"]})]),
    ("get", "/public-support/forecast", "The public-support percentage forecast for this year "
     "and the next two; with proposed_amount, what a proposed gift would change", "read", None,
     200, [], [("proposed_amount", {"type": "string"}), ("proposed_donor_id", {"type": "integer"}),
               ("proposed_on", {"type": "string", "format": "date"})]),
    ("post", "/public-support/links", "Treat two donors as one contributor (spouse, family, "
     "controlled entity)", "review", SupportLinkCreate, 201, [], []),
    ("delete", "/public-support/links/{id}", "Remove a link between donors", "review",
     SupportReason, 200, [ID], []),
    ("post", "/public-support/classes", "Record a donor as a governmental unit or publicly "
     "supported charity (not limited to 2%)", "review", SupportClassCreate, 201, [], []),
    ("delete", "/public-support/classes/{id}", "Clear a donor's public-support class",
     "review", SupportReason, 200, [ID], []),
    ("post", "/public-support/unusual-grants", "Mark a gift an unusual grant (left out of the "
     "test)", "review", UnusualGrantCreate, 201, [], []),
    ("delete", "/public-support/unusual-grants/{id}", "Unmark an unusual grant", "review",
     SupportReason, 200, [ID], []),
    # Corrections of mistaken gifts (app/api/corrections.py).
    ("post", "/gifts/{id}/void", "Void a gift recorded in error (reversed on its own date; "
     "later decisions re-screened)", "gifts.correct", GiftVoid, 200, [ID], []),
    ("post", "/gifts/{id}/correct", "Correct a gift: void it and record the right one "
     "through the door", "gifts.correct", GiftCorrectionCreate, 201, [ID], []),
    # Recurring gifts (app/api/recurring.py): changes are asked of Stripe first.
    ("get", "/recurring", "List monthly gifts (status, next charge, failed payments, lifetime "
     "value net of refunds)", "read", None, 200, [],
     [("status", {"type": "string", "enum": ["active", "paused", "past_due", "cancelled"]}),
      ("donor_id", {"type": "integer"}), ("limit", {"type": "integer"}),
      ("after_id", {"type": "integer"})]),
    ("get", "/recurring/{id}", "Get a monthly gift", "read", None, 200, [ID], []),
    ("post", "/recurring/{id}/pause", "Pause a monthly gift in Stripe (409 if Stripe refuses, "
     "502 if unreachable: nothing changes)", "recurring.manage", None, 200, [ID], []),
    ("post", "/recurring/{id}/resume", "Resume a paused monthly gift in Stripe",
     "recurring.manage", None, 200, [ID], []),
    ("post", "/recurring/{id}/amount", "Change a monthly gift's amount from the next invoice on",
     "recurring.manage", RecurringAmount, 200, [ID], []),
    ("post", "/recurring/{id}/cancel", "Cancel a monthly gift in Stripe", "recurring.manage",
     None, 200, [ID], []),
    # Households and relationships (app/api/relationships.py).
    ("get", "/donors/{id}/relationships", "A donor's relationships (household, spouse or "
     "partner, family, colleague), both ways", "read", None, 200, [ID], []),
    ("post", "/donors/{id}/relationships", "Record a relationship (re-screens the gifts it "
     "concerns)", "affiliations.write", RelationshipCreate, 201, [ID], []),
    ("post", "/relationships/{id}/end", "End a relationship (one the policy screens: waits "
     "for approval)", "affiliations.write", RelationshipEnd, 200, [ID], []),
    ("delete", "/relationships/{id}", "Delete a relationship (one the policy screens: waits)",
     "affiliations.write", None, 200, [ID], []),
    ("get", "/households/{id}", "The household of a donor: members, combined giving and soft "
     "credits", "read", None, 200, [ID], []),
    ("put", "/rosters/{id}", "Change a roster entry (ending it early or another weakening "
     "part at a covered organisation waits for approval)", "review", RosterEntryCreate, 200,
     [ID], []),
    ("delete", "/rosters/{id}", "Delete a roster entry (at a covered organisation: waits)",
     "review", None, 200, [ID], []),
    # Donor segments and tags (app/api/segments.py).
    ("get", "/segments", "Saved donor segments", "read", None, 200, [], []),
    ("post", "/segments", "Save a donor segment (its criteria, not a list of donors)",
     "segments.write", SegmentCreate, 201, [], []),
    ("get", "/segments/{id}", "Get a donor segment", "read", None, 200, [ID], []),
    ("get", "/segments/{id}/donors", "The donors in a segment today, by id", "read", None, 200,
     [ID], [("after_id", {"type": "integer", "minimum": 0}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 500})]),
    ("get", "/donors/{id}/tags", "A donor's tags", "read", None, 200, [ID], []),
    ("put", "/donors/{id}/tags", "Set a donor's tags (all of them)", "donors.write", TagSet,
     200, [ID], []),
]

#: Operations that answer 202 when part of the request waits for a second person.
PENDING_APPROVAL = [("put", "/affiliations/{id}"), ("patch", "/organizations/{id}"),
                    ("delete", "/affiliations/{id}"), ("put", "/rosters/{id}"),
                    ("delete", "/rosters/{id}"), ("post", "/relationships/{id}/end"),
                    ("delete", "/relationships/{id}")]


#: Writes that take no Idempotency-Key: the preview records nothing; the two-person-rule
#: changes (app/api/change_routes.py) run their own ledger_batch, which an API request's
#: batch (app.api.idempotency) cannot hold yet.
NOT_RECORDING = {("post", "/gifts/preview"), ("post", "/recurring/{id}/pause"),
                 ("post", "/recurring/{id}/resume"), ("post", "/recurring/{id}/amount"),
                 ("post", "/recurring/{id}/cancel")}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Any unique string per request (a UUID). Sent again with the same "
                   "request within 24 hours, it answers with the first response (marked "
                   "Idempotent-Replayed: true) instead of recording again; with another "
                   "request, 422. Per token. See docs/api.md.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[\\x20-\\x7e]+$"},
}


def _takes_idempotency_key(op: dict) -> None:
    """A recording operation (app.api.idempotency.recording)."""
    op["parameters"].append(dict(IDEMPOTENCY_KEY))
    op["responses"]["409"]["description"] += (
        ", or a request with the same Idempotency-Key still running (retry shortly)")
    op["responses"]["500"] = {
        "description": "The outcome is unknown: the database connection was lost while "
                       "committing. Retry with the same Idempotency-Key",
        "content": {"application/json": {"schema": ERROR}}}


def _operation(method, summary, permission, model, status, path_params, query_params):
    op: dict = {
        "summary": summary,
        "description": f"Requires permission `{permission}`.",
        "security": [{"bearer": []}],
        "parameters": list(path_params) + [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in query_params
        ],
        "responses": {
            str(status): {"description": "Success",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
            "401": {"description": "Missing or invalid token",
                    "content": {"application/json": {"schema": ERROR}}},
            "403": {"description": "The token's role may not do this",
                    "content": {"application/json": {"schema": ERROR}}},
            "422": {"description": "Invalid input, with field errors",
                    "content": {"application/json": {"schema": ERROR}}},
            "503": {"description": "Busy; retry", "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if path_params or method != "get":
        op["responses"]["404"] = {"description": "Unknown id",
                                  "content": {"application/json": {"schema": ERROR}}}
    if method != "get":
        op["responses"]["409"] = {"description": "Conflict with the record's state or a duplicate",
                                  "content": {"application/json": {"schema": ERROR}}}
    if model is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    return op


@cache
def openapi_document() -> dict:
    schemas: dict = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "errors": {"type": "object",
                           "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
        }
    }
    for model in INPUTS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    paths: dict = {}
    for method, path, summary, permission, model, status, pparams, qparams in OPERATIONS:
        paths.setdefault(path, {})[method] = _operation(
            method, summary, permission, model, status, pparams, qparams
        )
        if method != "get" and (method, path) not in NOT_RECORDING:
            _takes_idempotency_key(paths[path][method])
    note_body = {
        "required": False,
        "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": True,
            "properties": {"note": {"type": "string"}},
        }}},
    }
    for param in paths["/disclosures/conflicts"]["get"]["parameters"]:
        param["required"] = True  # the period has no default
    paths["/overrides/{id}/approve"]["post"]["requestBody"] = note_body
    paths["/overrides/{id}/decline"]["post"]["requestBody"] = note_body
    paths["/changes/{id}/approve"]["post"]["requestBody"] = note_body
    paths["/changes/{id}/decline"]["post"]["requestBody"] = note_body
    for method, path in PENDING_APPROVAL:
        paths[path][method]["responses"]["202"] = {
            "description": "A part of the change weakens enforcement: it waits for a second "
                           "person ({\"change_id\": N, \"status\": \"pending_approval\"})",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    paths["/rosters"]["post"]["requestBody"] = {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}},
                    "multipart/form-data": {"schema": {
                        "type": "object", "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}}}}},
    }
    paths["/rosters"]["post"]["responses"]["415"] = {
        "description": "The body is neither text/csv nor multipart/form-data",
        "content": {"application/json": {"schema": ERROR}},
    }
    paths["/gifts/{id}/review"]["post"]["responses"]["202"] = {
        "description": "The policy rejects the gift: an override request now waits for a "
                       "second reviewer",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Arm's Length API", "version": "1",
                 "description": "See docs/api.md. Amounts are decimal strings in major units."},
        "servers": [{"url": "/api/v1"}],
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
