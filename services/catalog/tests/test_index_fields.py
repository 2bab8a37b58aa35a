"""The flat index fields a catalog record is stored with, without servers."""

from __future__ import annotations

from datetime import UTC, datetime

from ssg.catalog.domain import proposals as rules
from ssg.catalog.domain.model import Partner, SolutionContent
from ssg.catalog.store.documents import index_fields
from ssg.platform.proposals import proposal

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_a_solution_lists_each_of_its_organizations_once_owner_first():
    content = SolutionContent(
        title="Solar pumps",
        partners=(
            Partner("org-2", "FUNDER"),
            Partner("org-1", "PROVIDER"),
            Partner("org-2", "FACILITATOR"),
        ),
    )
    p = proposal("solution", "pm", "S-1", 1)
    s = rules.draft_solution("id-1", p, "org-1", content, "africa", NOW)
    ix = index_fields(s)
    assert ix["orgs"] == ["org-1", "org-2"]
    assert ix["org"] == "org-1"
