"""Domain rules of the ai service: review scope, anchoring, cache keys, summaries, paths."""

from __future__ import annotations

import pytest

from services.ai.config import AiConfig
from services.ai.domain import (
    JobKind,
    SourceFile,
    cache_key,
    check_paths,
    document_path,
    make_finding,
    scope_from_hunks,
    summary,
)
from services.common.config import ConfigError, Env
from services.common.errors import InvalidArgument

TEXT = "".join(f"line {n}\n" for n in range(1, 21))



def test_a_finding_in_scope_stays_and_one_outside_is_dropped() -> None:
    source = SourceFile("a.py", TEXT, frozenset({5, 6, 7}))
    kept = source.anchor(make_finding("a.py", 6, 6, "info", "style", "m"))
    assert kept is not None
    assert (kept.line, kept.end_line) == (6, 6)
    assert source.anchor(make_finding("a.py", 9, 9, "info", "style", "m")) is None


def test_a_range_reaching_into_the_diff_is_anchored_on_its_first_line_there() -> None:
    source = SourceFile("a.py", TEXT, frozenset({5, 6, 7}))
    moved = source.anchor(make_finding("a.py", 2, 12, "warning", "maintainability", "long"))
    assert moved is not None
    assert (moved.line, moved.end_line) == (5, 12)


def test_lines_beyond_the_file_are_dropped_or_clamped() -> None:
    whole = SourceFile("a.py", TEXT)
    assert whole.anchor(make_finding("a.py", 25, 25, "info", "style", "m")) is None
    clamped = whole.anchor(make_finding("a.py", 19, 40, "info", "style", "m"))
    assert clamped is not None
    assert clamped.end_line == 20


def test_added_files_and_files_without_a_patch_are_reviewed_whole() -> None:
    assert scope_from_hunks("added", [1, 2]) is None
    assert scope_from_hunks("modified", None) is None
    assert scope_from_hunks("modified", [3, 4, 0]) == frozenset({3, 4})
    assert SourceFile("a.py", "x\ny\n", frozenset({2})).numbered_lines() == [(2, "y")]


def test_cache_keys_change_with_path_content_and_scope() -> None:
    base = cache_key("a.py", "x = 1\n", None)
    assert base == cache_key("a.py", "x = 1\n", None)
    assert base != cache_key("b.py", "x = 1\n", None)
    assert base != cache_key("a.py", "x = 2\n", None)
    assert base != cache_key("a.py", "x = 1\n", frozenset({1}))
    assert len(base) == 64


def test_summary_counts_severities_and_reuse() -> None:
    found = [make_finding("a.py", 1, 1, "error", "security", "m"),
             make_finding("a.py", 2, 2, "warning", "style", "m"),
             make_finding("b.py", 3, 3, "warning", "style", "m")]
    assert summary(findings=found, files=6, reviewed=2, reused=4, skipped=0,
                   kind=JobKind.REVIEW) == (
        "3 findings in 6 files (1 error, 2 warning); 2 files reviewed, 4 unchanged reused")
    assert summary(findings=[], files=1, reviewed=1, reused=0, skipped=1,
                   kind=JobKind.DOCUMENT) == (
        "0 findings in 1 file; 1 file skipped (binary or too large)")


def test_document_paths_follow_the_session_language() -> None:
    assert document_path("python") == "document.py"
    assert document_path(" TypeScript ") == "document.ts"
    assert document_path("") == "document.txt"
    assert document_path("klingon") == "document.txt"


def test_requested_paths_are_bounded_and_deduplicated() -> None:
    assert check_paths(["b.py", "a.py", "b.py"]) == ("b.py", "a.py")
    with pytest.raises(InvalidArgument) as info:
        check_paths(["ok.py", ""])
    assert info.value.violations[0].field == "paths.1"
    with pytest.raises(InvalidArgument):
        check_paths(["x"] * 501)


def test_findings_are_trimmed_to_sane_values() -> None:
    odd = make_finding("a.py", 0, -3, "info", "  ", "  ", "  ")
    assert (odd.line, odd.end_line, odd.category, odd.message, odd.suggestion) == (
        1, 1, "general", "(no message)", None)
    assert "suggestion" not in odd.public()


def test_openai_as_default_provider_needs_a_key() -> None:
    with pytest.raises(ConfigError) as info:
        AiConfig.from_env(Env({"AI_PROVIDER": "openai"}))
    assert info.value.name == "OPENAI_API_KEY"
    config = AiConfig.from_env(Env({"AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-x"}))
    assert config.default_provider == "openai"
    assert config.max_concurrency == 4
    assert config.max_jobs_per_user == 3
    assert config.max_jobs_per_session == 8
    assert config.job_deadline == 600.0
    with pytest.raises(ConfigError):
        AiConfig.from_env(Env({"AI_PROVIDER": "magic"}))
    with pytest.raises(ConfigError):
        AiConfig.from_env(Env({"AI_HEARTBEAT_SECONDS": "5", "AI_STALE_SECONDS": "6"}))
    for bad in ("0", "inf", "nan", "soon"):
        with pytest.raises(ConfigError) as info:
            AiConfig.from_env(Env({"AI_JOB_DEADLINE_SECONDS": bad}))
        assert info.value.name == "AI_JOB_DEADLINE_SECONDS"
    with pytest.raises(ConfigError) as info:
        AiConfig.from_env(Env({"AI_MAX_JOBS_PER_SESSION": "0"}))
    assert info.value.name == "AI_MAX_JOBS_PER_SESSION"
