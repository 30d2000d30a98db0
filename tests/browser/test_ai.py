"""AI review in a real browser (issue 16): findings stream into the room without a reload, into
the list (region "AI findings") and as CodeMirror diagnostics — in a review file's diff, and in
the shared editor for the live document.

The platform's provider is the builtin one (ruff, detect-secrets, lizard: deterministic,
offline), so what it flags in the stand-in's sample pull request is known
(standins/github/data.py, HELLO_USERS_PROBLEMS).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.people import SAMPLE_FILE, Api, Person

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]

# CodeMirror's lint markup (@codemirror/lint): the gutter's marker and the underlined range.
LINT_MARKER = ".cm-lint-marker"
LINT_RANGE = ".cm-lintRange"
EVAL_LINE = 52  # app/users.py at the head: return eval(raw)


def _pair(person: Factory, api: Api) -> tuple[Person, Person, str]:
    owner, other = person("ana"), person("ben")
    session_id = api.session(owner.login, members={other.login: "editor"})
    owner.open_room(session_id)
    other.open_room(session_id)
    return owner, other, session_id


def test_an_ai_review_of_the_pull_request_streams_into_the_list_and_the_diff(
        person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    api.import_review(session_id, ana.login)
    ana.open_file(SAMPLE_FILE)
    expect(ana.page.get_by_text("return eval(raw)").first).to_be_visible()
    assert ana.page.locator(LINT_MARKER).count() == 0

    ana.button("Run AI review").click()
    # eval() on line 52 (ruff S307), the hard-coded password on line 9 (S105): in the list
    # of both people, without a reload.
    for someone in (ana, ben):
        expect(someone.ai_findings).to_contain_text("S307", timeout=20_000)
        expect(someone.ai_findings).to_contain_text("S105")
        expect(someone.ai_findings).to_contain_text(SAMPLE_FILE)
    # ...and as diagnostics in the open diff: a gutter marker on the line (an image named after
    # its findings) and the line underlined.
    marker = ana.page.get_by_role("img", name=re.compile(r"^AI finding\..*\(S307\)"))
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("data-finding-line", str(EVAL_LINE))
    expect(marker).to_have_class(re.compile(r"\bcm-lint-marker-error\b"))
    expect(ana.page.locator(LINT_RANGE).filter(has_text="return eval(raw)")).to_have_count(1)


def test_reviewing_the_live_document_shows_diagnostics_in_the_shared_editor(
        person: Factory, api: Api) -> None:
    ana, ben, _ = _pair(person, api)
    ana.type_in_editor("import os")
    ben.wait_for_text("import os")

    ana.button("Review document").click()
    for someone in (ana, ben):
        expect(someone.ai_findings).to_contain_text("F401", timeout=20_000)
        expect(someone.ai_findings).to_contain_text("document.py")
    # The diagnostic underlines the document's first line (findings name lines, not columns),
    # in each person's editor.
    for someone in (ana, ben):
        expect(someone.page.locator(f".cm-content {LINT_RANGE}").first).to_contain_text("import os")
        expect(someone.page.locator(LINT_MARKER).first).to_be_visible()
