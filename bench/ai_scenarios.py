"""AI review measurements for `make bench`: built-in analysis time and OpenAI time to first finding.

Each function returns plain numbers; the bench registry wraps them into table
rows. They run in-process (no platform needed): the built-in analyzer with its
worker processes, and the OpenAI client against an in-process stand-in.
Targets: 2,000 lines of Python reviewed by the built-in analyzer in at most 0.5 s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from aiohttp import web

from services.ai.config import OpenAIConfig
from services.ai.domain import Finding, SourceFile
from services.ai.providers.builtin import BuiltinProvider
from services.ai.providers.openai import OpenAIProvider
from standins.github.data import HELLO_CONFIG_HEAD, HELLO_USERS_HEAD
from standins.openai.app import create_app
from standins.openai.config import OpenAIStandinConfig

_BLOCK = '''\
def handler_{n}(request, cache={{}}):
    """Answer request {n} from the cache or the store."""
    key = request.get("key", "{n}")
    if key in cache:
        return cache[key]
    try:
        value = store.load(key, timeout={t})
    except:
        value = None
    if value is None and request.get("expr"):
        value = eval(request["expr"])
    for attempt in range({t}):
        if attempt > 2 and value:
            break
    cache[key] = value
    return value


'''


def generated_python(lines: int) -> str:
    """A valid Python module of exactly `lines` lines, with findings in every block."""
    out = ['"""A generated module for measuring review time."""', "", "import os",
           "import json", "", "store = None", "", ""]
    n = 0
    while True:
        block = _BLOCK.format(n=n, t=n % 7 + 1).splitlines()
        if len(out) + len(block) > lines:
            break
        out.extend(block)
        n += 1
    # Whole blocks only, so the module parses; module-level constants fill the rest.
    out.extend(f"LIMIT_{i} = {i}" for i in range(lines - len(out)))
    return "\n".join(out[:lines]) + "\n"


async def builtin_review_seconds(lines: int = 2_000, repeats: int = 5,
                                 processes: int = 2) -> dict[str, Any]:
    """Built-in review of a generated `lines`-line Python file, warm (worker processes started)."""
    provider = BuiltinProvider(processes=processes)
    try:
        await provider.warm_up()
        source = SourceFile("generated.py", generated_python(lines))
        findings: list[Finding] = await provider.analyze(source)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            findings = await provider.analyze(source)
            times.append(time.perf_counter() - started)
    finally:
        await provider.close()
    return {"lines": lines, "findings": len(findings), "best_seconds": min(times),
            "median_seconds": statistics.median(times), "target_seconds": 0.5}


async def builtin_sample_pull_request_seconds(repeats: int = 5) -> dict[str, Any]:
    """Built-in review of the sample pull request's Python files, as a review job runs it."""
    files = [SourceFile("app/users.py", HELLO_USERS_HEAD),
             SourceFile("app/config.py", HELLO_CONFIG_HEAD)]
    provider = BuiltinProvider()
    try:
        await provider.warm_up()
        times = []
        count = 0
        for _ in range(repeats):
            started = time.perf_counter()
            count = len([item async for item in provider.review(files) if isinstance(item, Finding)])
            times.append(time.perf_counter() - started)
    finally:
        await provider.close()
    return {"files": len(files), "findings": count, "best_seconds": min(times),
            "median_seconds": statistics.median(times)}


async def openai_first_finding_seconds(repeats: int = 5) -> dict[str, Any]:
    """Time to the first streamed finding (and to the whole answer) against the OpenAI stand-in."""
    config = OpenAIStandinConfig()
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    settings = OpenAIConfig(
        base_url=f"http://{host}:{port}/v1", api_key=config.api_key, model=config.model,
        timeout=10.0, request_deadline=60.0, max_retries=0, retry_base=0.1, retry_max=1.0,
        max_prompt_tokens=6_000, max_completion_tokens=4_000)
    provider = OpenAIProvider(settings)
    firsts, totals = [], []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            first: float | None = None
            async for item in provider.review([SourceFile("app/users.py", HELLO_USERS_HEAD)]):
                if first is None and isinstance(item, Finding):
                    first = time.perf_counter() - started
            totals.append(time.perf_counter() - started)
            firsts.append(first if first is not None else totals[-1])
    finally:
        await provider.close()
        await runner.cleanup()
    return {"first_finding_median_seconds": statistics.median(firsts),
            "answer_median_seconds": statistics.median(totals)}
