"""The built-in provider on known inputs: the sample pull request's file, leaked keys, complexity."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.ai.domain import FileDone, Finding, SourceFile
from services.ai.providers.builtin import BuiltinProvider, ruff_class
from standins.github.data import HELLO_USERS_HEAD, HELLO_USERS_PROBLEMS

AWS_KEYS = '''\
"""Settings for the uploader."""

import boto3

AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
REGION = "eu-west-1"


def client():
    return boto3.client("s3", region_name=REGION)
'''

TANGLED = '''\
def classify(kind, size, owner, flags):
    if kind == "a":
        return 1
    elif kind == "b":
        return 2
    elif kind == "c":
        if size > 10:
            return 3
        elif size > 5:
            return 4
    elif kind == "d":
        for flag in flags:
            if flag == "x":
                return 5
            elif flag == "y" and owner:
                return 6
            elif flag == "z" or size:
                return 7
    elif kind == "e":
        while size:
            size -= 1
            if size == 3:
                break
    elif kind == "f" and owner:
        return 8
    return 0
'''


@pytest.fixture(scope="module")
def provider() -> Iterator[BuiltinProvider]:
    analyzer = BuiltinProvider(timeout=30, processes=2)
    yield analyzer
    analyzer.shutdown()


def codes(findings: list[Finding]) -> dict[int, list[str]]:
    """Line -> the rule codes (or tools) found there."""
    out: dict[int, list[str]] = {}
    for f in findings:
        label = f.message.rsplit("(", 1)[-1].rstrip(")") if f.source == "ruff" else f.source
        out.setdefault(f.line, []).append(label)
    return out


async def test_the_sample_pull_requests_planted_problems_are_all_found(
        provider: BuiltinProvider) -> None:
    findings = await provider.analyze(SourceFile("app/users.py", HELLO_USERS_HEAD))
    found = codes(findings)
    expected = {"unused-import": "F401", "hard-coded-password": "S105",
                "mutable-default-argument": "B006", "sql-injection": "S608",
                "eval-on-user-input": "S307", "complex-function": "lizard",
                "bare-except": "E722"}
    for problem, (first, _last) in HELLO_USERS_PROBLEMS.items():
        assert expected[problem] in found.get(first, []), (problem, found)
    complex_fn = next(f for f in findings if f.source == "lizard")
    assert (complex_fn.line, complex_fn.end_line) == HELLO_USERS_PROBLEMS["complex-function"]
    assert complex_fn.severity == "warning"
    assert "lookup" in complex_fn.message
    assert complex_fn.category == "maintainability"
    by_code = {f.message.rsplit("(", 1)[-1].rstrip(")"): f for f in findings if f.source == "ruff"}
    assert by_code["S307"].severity == "error"
    assert by_code["S307"].category == "security"
    assert by_code["E722"].severity == "warning"
    assert by_code["E722"].category == "correctness"
    # A fix ruff offers becomes the suggestion.
    assert by_code["F401"].suggestion == "Remove unused import: `os`"
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    # "hunter2" is ruff's hard-coded password; detect-secrets does not repeat it.
    assert [f.source for f in findings if f.line == 9] == ["ruff"]


async def test_a_leaked_aws_key_is_flagged_in_any_file(provider: BuiltinProvider) -> None:
    python = await provider.analyze(SourceFile("uploader/settings.py", AWS_KEYS))
    leaks = [f for f in python if f.source == "detect-secrets"]
    assert [(f.line, f.severity, f.category) for f in leaks] == [(5, "error", "security")]
    assert "AWS Access Key" in leaks[0].message
    assert leaks[0].suggestion
    yaml = await provider.analyze(SourceFile("deploy/values.yaml",
                                             "aws:\n  key_id: AKIAIOSFODNN7EXAMPLE\n"))
    assert [(f.line, f.source) for f in yaml] == [(2, "detect-secrets")]


async def test_an_over_complex_function_is_flagged(provider: BuiltinProvider) -> None:
    findings = await provider.analyze(SourceFile("lib/classify.js", TANGLED.replace(
        "def classify(kind, size, owner, flags):", "function classify(kind, size, owner, flags) {")))
    assert findings == []  # not JavaScript, so lizard finds no function and ruff does not run
    findings = await provider.analyze(SourceFile("lib/classify.py", TANGLED))
    complexity = [f for f in findings if f.source == "lizard"]
    assert len(complexity) == 1
    assert (complexity[0].line, complexity[0].end_line) == (1, 26)
    assert "classify" in complexity[0].message
    assert "limit 15" in complexity[0].message


async def test_a_syntax_error_is_reported_on_its_line(provider: BuiltinProvider) -> None:
    findings = await provider.analyze(SourceFile("broken.py", "x = 1\ndef f(:\n    pass\n"))
    assert next((f.line, f.severity, f.category) for f in findings
                if f.source == "ruff") == (2, "error", "correctness")


async def test_review_yields_each_files_findings_then_its_end_in_order(
        provider: BuiltinProvider) -> None:
    files = [SourceFile("b.py", "import os\n"), SourceFile("a.txt", "nothing here\n"),
             SourceFile("c.py", "try:\n    x = 1\nexcept:\n    x = 2\n")]
    items = [item async for item in provider.review(files)]
    shape = [(type(i).__name__, i.path) for i in items]
    assert shape == [("Finding", "b.py"), ("FileDone", "b.py"), ("FileDone", "a.txt"),
                     ("Finding", "c.py"), ("FileDone", "c.py")]
    assert isinstance(items[-1], FileDone)


def _long_module(lines: int) -> str:
    """A valid Python module of `lines` lines with a few findings every 8 lines (the test's own:
    tests do not import the benchmark's generator)."""
    block = ['def f_{n}(r, c={{}}):', '    try:', '        v = r["k{n}"]', '    except:',
             '        v = eval(r["e"])', '    c[{n}] = v', '    return v', '']
    out = ['"""Generated."""', "import os", ""]
    n = 0
    while len(out) + len(block) <= lines:
        out.extend(line.format(n=n) for line in block)
        n += 1
    out.extend(f"LIMIT_{i} = {i}" for i in range(lines - len(out)))
    return "\n".join(out) + "\n"


async def test_analysis_of_a_long_file_is_deterministic(provider: BuiltinProvider) -> None:
    # 2,000 lines: detect-secrets scans it in slices across the workers, which must not
    # change the answer. How fast it is, is measured by `make bench` (ai_builtin_2k).
    source = SourceFile("big.py", _long_module(2_000))
    first = await provider.analyze(source)
    second = await provider.analyze(source)
    assert first == second
    assert len(first) > 100
    single = BuiltinProvider(timeout=30, processes=1)
    try:
        assert await single.analyze(source) == first
    finally:
        single.shutdown()


def test_ruff_rules_map_to_severity_and_category() -> None:
    assert ruff_class("S608") == ("error", "security")
    assert ruff_class("S311") == ("warning", "security")
    assert ruff_class("F821") == ("error", "correctness")
    assert ruff_class("F841") == ("warning", "maintainability")
    assert ruff_class("E401") == ("info", "style")
    assert ruff_class("B006") == ("warning", "correctness")
    assert ruff_class("invalid-syntax") == ("error", "correctness")
