"""`.env.example` lists every environment variable the code reads (and nothing it does not)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Readers: Env("…") methods in services/gateway, os.environ in stand-ins and scripts.
_READ = re.compile(r'(?:env|self\._env|self|e)\.(?:str|int|float|bool|url|port|address|csv|choice|'
                   r'optional_str|raw|secret)\(\s*"([A-Z][A-Z0-9_]+)"')
_ENVIRON = re.compile(r'environ(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"|environ\[\s*"([A-Z][A-Z0-9_]+)"\]')
# The stand-ins read their own variables through small helpers of their own.
_STANDIN = re.compile(r'\b(?:env\.get|_int_var|_str_var|_float_var|_var|_url_var)\(\s*(?:env,\s*)?"([A-Z][A-Z0-9_]+)"')
_PACKAGES = ("services", "gateway", "standins")
# Read by tooling or the sample repository's own code, not by Tandem processes.
_NOT_CONFIG = {"BENCH_SECONDS", "HELLO_DATABASE_PATH", "HELLO_DEBUG", "HELLO_LOOKUP_LIMIT",
               "DEVDEPS_BACKEND", "PYTHONPATH", "CI"}


def _read_in_code() -> set[str]:
    names: set[str] = set()
    for package in _PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            names.update(_READ.findall(text))
            names.update(_STANDIN.findall(text))
            if path.name == "config.py" and package == "standins":
                names.update(re.findall(r'"((?:GITHUB|OPENAI|PUBLIC)_[A-Z0-9_]+)"', text))
            for a, b in _ENVIRON.findall(text):
                names.add(a or b)
    return names - _NOT_CONFIG


def _listed() -> set[str]:
    listed = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            listed.add(match.group(1))
    return listed


def test_every_variable_read_is_listed() -> None:
    missing = sorted(_read_in_code() - _listed())
    assert not missing, f"add these to .env.example: {missing}"


def test_every_listed_variable_is_read() -> None:
    stale = sorted(_listed() - _read_in_code())
    assert not stale, f".env.example lists variables no code reads: {stale}"
