"""AI review speed: the built-in analyzer on 2,000 lines and on the sample PR, OpenAI first finding."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.registry import Context, Load, Measurement, PyLoad, RunSpec, scenario


def _timed(once: Callable[[], Awaitable[None]], setup: Callable[[], Awaitable[None]],
           teardown: Callable[[], Awaitable[None]], unit: str) -> PyLoad:
    """Repeat `once` for the run's duration; p50/p99 are per-operation latencies."""

    def run(spec: RunSpec) -> Measurement:
        async def measure() -> Measurement:
            await setup()
            try:
                samples: list[float] = []
                deadline = time.perf_counter() + (1.0 if spec.warmup else spec.seconds)
                while time.perf_counter() < deadline or len(samples) < 3:
                    start = time.perf_counter()
                    await once()
                    samples.append(time.perf_counter() - start)
            finally:
                await teardown()
            samples.sort()
            return Measurement(len(samples), sum(samples), samples[len(samples) // 2] * 1000,
                               samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 0,
                               unit)

        return asyncio.run(measure())

    return PyLoad(run)


@scenario("ai_builtin_2k", needs_platform=False)
def ai_builtin_2k(ctx: Context) -> Load:
    """Built-in review (ruff + detect-secrets + lizard) of a generated 2,000-line Python file."""
    from bench.ai_scenarios import generated_python  # noqa: PLC0415 - heavy imports only when chosen
    from services.ai.domain import SourceFile  # noqa: PLC0415
    from services.ai.providers.builtin import BuiltinProvider  # noqa: PLC0415

    provider = BuiltinProvider(processes=2)
    source = SourceFile("generated.py", generated_python(2_000))

    async def once() -> None:
        await provider.analyze(source)

    return _timed(once, provider.warm_up, provider.close, "reviews/s")


@scenario("ai_builtin_pr", needs_platform=False)
def ai_builtin_pr(ctx: Context) -> Load:
    """Built-in review of the sample pull request's Python files, as a review job runs it."""
    from services.ai.domain import SourceFile  # noqa: PLC0415
    from services.ai.providers.builtin import BuiltinProvider  # noqa: PLC0415
    from standins.github.data import HELLO_CONFIG_HEAD, HELLO_USERS_HEAD  # noqa: PLC0415

    provider = BuiltinProvider()
    files = [SourceFile("app/users.py", HELLO_USERS_HEAD), SourceFile("app/config.py", HELLO_CONFIG_HEAD)]

    async def once() -> None:
        async for _ in provider.review(files):
            pass

    return _timed(once, provider.warm_up, provider.close, "reviews/s")


@scenario("ai_openai_first_finding", needs_platform=False)
def ai_openai_first_finding(ctx: Context) -> Load:
    """Time to the first streamed finding from the OpenAI stand-in (p50/p99 of that time)."""
    from bench.ai_scenarios import openai_first_finding_seconds  # noqa: PLC0415

    def run(spec: RunSpec) -> Measurement:
        repeats = 3 if spec.warmup else max(5, spec.seconds * 5)
        result = asyncio.run(openai_first_finding_seconds(repeats=repeats))
        first = result["first_finding_median_seconds"] * 1000
        return Measurement(repeats, result["answer_median_seconds"] * repeats, first, first, 0,
                           "answers/s")

    return PyLoad(run)
