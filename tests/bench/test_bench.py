"""The benchmark harness: report parsing, table, JSON shape, compare, and one real floor run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench import compare, report, runner, wrk
from bench.local import BenchError
from bench.registry import (
    REGISTRY,
    Context,
    Measurement,
    PyLoad,
    Result,
    RunSpec,
    Scenario,
    Skip,
    WrkLoad,
    fill_ratios,
)
from scripts.platform import ROOT, python_env

CORE_KEYS = {"name", "rps", "p50_ms", "p99_ms", "errors", "baseline", "ratio"}

WRK_STDOUT = """\
Running 1s test @ http://127.0.0.1:8080/health
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.61ms  437.61us  12.52ms   90.10%
BENCH_REPORT {"requests":30000,"duration_us":1500000,"bytes":4710000,"p50_us":1500,\
"p90_us":2100,"p99_us":3250,"max_us":12520,"mean_us":1610.5,"connect":1,"read":2,"write":0,\
"timeout":3,"status":4,"other_status":5}
"""


def test_parse_report_reads_the_json_line_among_wrks_own_output() -> None:
    rep = wrk.parse_report(WRK_STDOUT)
    assert rep.requests == 30000
    assert rep.errors == 1 + 2 + 0 + 3 + 4 + 5
    m = rep.measurement()
    assert m.rate == pytest.approx(20000.0)
    assert m.p50_ms == pytest.approx(1.5)
    assert m.p99_ms == pytest.approx(3.25)


def test_parse_report_without_a_report_line_says_so() -> None:
    with pytest.raises(wrk.WrkError, match="BENCH_REPORT"):
        wrk.parse_report("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_build_script_carries_method_headers_body_and_the_report_hook() -> None:
    load = WrkLoad("http://x/api", method="POST", headers={"Authorization": 'Bearer "a\\b'},
                   body='{"text":"héllo\n"}')
    script = wrk.build_script(load)
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Authorization"] = "Bearer \\034a\\092b"' in script
    assert "\\195\\169" in script  # é as UTF-8 bytes
    assert "\\010" in script
    assert "\n\"" not in script.split("wrk.body = ")[1].split("\n")[0]
    assert script.rstrip().endswith("end")
    assert "BENCH_REPORT" in script


def _results() -> list[Result]:
    results = [
        Result("floor", rps=20000.0, p50_ms=1.5, p99_ms=3.25, errors=0),
        Result("health", rps=15000.0, p50_ms=2.0, p99_ms=4.0, errors=2, baseline="floor",
               cpu_us={"gateway": 61.24, "auth": 2.0}),
        Result("me", baseline="health", skipped="GET /api/v1/me answers 404 (not found)"),
        Result("rss_gateway", value=61.25, unit="MB"),
    ]
    fill_ratios(results)
    return results


def test_ratio_is_against_the_baseline_of_the_same_run() -> None:
    results = _results()
    assert results[1].ratio == pytest.approx(0.75)
    assert results[0].ratio is None
    assert results[2].ratio is None


def test_render_table_has_one_aligned_row_per_result_and_skip_reasons_below() -> None:
    lines = report.render(_results()).splitlines()
    assert lines[0].split() == ["scenario", "throughput", "p50", "ms", "p99", "ms", "errors",
                                "baseline", "ratio", "CPU", "us/op"]
    assert lines[1].split() == ["floor", "20,000.0", "req/s", "1.50", "3.25", "0", "-", "-", "-"]
    assert lines[2].split() == ["health", "15,000.0", "req/s", "2.00", "4.00", "2", "floor",
                                "0.75x", "63"]
    assert lines[3].split()[:2] == ["me", "skipped"]
    assert lines[4].split()[:3] == ["rss_gateway", "61.2", "MB"]
    assert len({len(line) for line in lines[:2]}) == 1  # right-aligned to the same width
    assert lines[5] == "  me: skipped: GET /api/v1/me answers 404 (not found)"


def test_json_shape_has_exactly_the_agreed_keys() -> None:
    doc = report.document(_results(), commit_id="abc1234", machine_info=report.machine())
    assert set(doc) == {"commit", "machine", "scenarios"}
    floor, health, me, rss = doc["scenarios"]
    assert set(floor) == CORE_KEYS
    assert set(health) == CORE_KEYS | {"cpu_us_per_op"}
    assert set(me) == CORE_KEYS | {"skipped"}
    assert set(rss) == CORE_KEYS | {"value", "unit"}
    assert health == {"name": "health", "rps": 15000.0, "p50_ms": 2.0, "p99_ms": 4.0,
                      "errors": 2, "baseline": "floor", "ratio": 0.75,
                      "cpu_us_per_op": {"gateway": 61.2, "auth": 2.0}}
    assert Result.from_json(health).cpu_us == {"gateway": 61.2, "auth": 2.0}
    assert rss["value"] == 61.2
    assert rss["unit"] == "MB"
    assert rss["rps"] is None
    assert {"cores", "cpu", "memory_gb", "python", "kernel"} <= set(doc["machine"])
    json.dumps(doc)  # serialisable as is


def test_write_names_the_file_by_date_and_commit_and_updates_latest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    doc = report.document(_results(), commit_id="abc1234", machine_info="test box")
    path = report.write(doc, now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC))
    assert path == tmp_path / "20250304-050607-abc1234.json"
    assert (tmp_path / "latest.json").read_text() == path.read_text()
    assert json.loads(path.read_text()) == doc


def _write(path: Path, commit: str, floor: float, p99: float, rss: float,
           cpu_us: float | None = None) -> Path:
    extra = {"cpu_us_per_op": {"floor": cpu_us}} if cpu_us is not None else {}
    path.write_text(json.dumps({"commit": commit, "machine": "m", "scenarios": [
        {"name": "floor", "rps": floor, "p50_ms": 1.0, "p99_ms": p99, "errors": 0,
         "baseline": None, "ratio": None, **extra},
        {"name": "rss_gateway", "rps": None, "p50_ms": None, "p99_ms": None, "errors": None,
         "baseline": None, "ratio": None, "value": rss, "unit": "MB"},
    ]}))
    return path


def test_compare_prints_both_rates_and_p99_with_the_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", "aaaa111", 20000.0, 4.0, 60.0)
    b = _write(tmp_path / "b.json", "bbbb222", 22000.0, 3.0, 66.0, cpu_us=80.0)
    assert compare.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "commit aaaa111" in out[0]
    assert "commit bbbb222" in out[1]
    floor = next(line for line in out if line.startswith("floor"))
    # A has no CPU figure (an older result file): "-" and no change, not an error.
    assert floor.split() == ["floor", "20,000.0", "22,000.0", "+10.0%", "4.00", "3.00",
                             "-25.0%", "-", "80", "-"]
    rss = next(line for line in out if line.startswith("rss_gateway"))
    assert rss.split()[:5] == ["rss_gateway", "60.0", "MB", "66.0", "MB"]
    assert "+10.0%" in rss


def test_compare_resolves_commit_prefixes_to_the_newest_file(tmp_path: Path) -> None:
    old = _write(tmp_path / "20250101-000000-abc1234.json", "abc1234", 1.0, 1.0, 1.0)
    new = _write(tmp_path / "20250102-000000-abc1234.json", "abc1234", 1.0, 1.0, 1.0)
    _write(tmp_path / "latest.json", "abc1234", 1.0, 1.0, 1.0)
    assert compare.resolve("abc", tmp_path) == new != old
    assert compare.resolve("latest", tmp_path) == tmp_path / "latest.json"
    with pytest.raises(compare.NotFoundError):
        compare.resolve("fff", tmp_path)


def test_select_pulls_in_baselines_and_filters_rss_rows() -> None:
    chosen, keep = runner.select(["health"])
    assert [s.name for s in chosen] == ["floor", "health"]
    assert keep is None
    chosen, keep = runner.select(["rss_gateway"])
    assert [s.name for s in chosen] == ["rss"]
    assert keep == {"rss_gateway"}
    with pytest.raises(BenchError, match="unknown scenario"):
        runner.select(["nope"])
    assert list(REGISTRY)[:3] == ["floor", "health", "ready"]


def _ctx(tmp_path: Path) -> Context:
    return Context(url=None, env={}, platform=None, workdir=tmp_path, connections=3, seconds=2)


def test_a_missing_prerequisite_is_a_skip_and_python_loads_share_the_shape(
        tmp_path: Path) -> None:
    def not_yet(_: Context) -> WrkLoad:
        raise Skip("needs sign-in")

    skipped = runner.measure(Scenario("later", not_yet, baseline="floor"), _ctx(tmp_path), None)
    assert skipped == [Result("later", baseline="floor", skipped="needs sign-in")]

    runs: list[RunSpec] = []

    def timed(spec: RunSpec) -> Measurement:
        runs.append(spec)
        return Measurement(requests=100, seconds=2.0, p50_ms=1.0, p99_ms=2.0, errors=0,
                           unit="events/s")

    done = runner.measure(Scenario("py", lambda _: PyLoad(timed)), _ctx(tmp_path), None)
    assert [r.warmup for r in runs] == [True, False]
    assert runs[1] == RunSpec(seconds=2, connections=3)
    assert done[0].rps == 50.0
    assert done[0].to_json()["unit"] == "events/s"

    def broken(_: Context) -> WrkLoad:
        raise ValueError("boom")

    failed = runner.measure(Scenario("bad", broken), _ctx(tmp_path), None)
    assert failed[0].failed == "ValueError: boom"


def _run_one_second(tmp_path: Path, scenario: str) -> tuple[subprocess.CompletedProcess[str],
                                                           dict[str, Any]]:
    """`python -m bench --only <scenario>` for 1 s at c=10, its JSON written under tmp_path."""
    out = tmp_path / f"{scenario}.json"
    env = python_env()
    env.pop("BENCH_SECONDS", None)
    proc = subprocess.run([sys.executable, "-m", "bench", "--only", scenario, "--seconds", "1",
                           "--connections", "10", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (sudo apt-get install -y wrk)")
def test_a_real_one_second_run_of_the_floor(tmp_path: Path) -> None:
    latest = ROOT / "bench" / "results" / "latest.json"
    before = latest.stat().st_mtime_ns if latest.exists() else None
    proc, doc = _run_one_second(tmp_path, "floor")
    assert "==> floor: 1s at c=10" in proc.stderr
    (floor,) = doc["scenarios"]
    assert set(floor) == CORE_KEYS | {"cpu_us_per_op"}
    # The floor server is the scenario's own helper process: its CPU per request is counted.
    assert set(floor["cpu_us_per_op"]) == {"floor"}
    assert floor["cpu_us_per_op"]["floor"] > 0
    assert "CPU per operation: floor" in proc.stderr
    assert floor["name"] == "floor"
    assert floor["errors"] == 0
    # The run happened and was measured (how fast is `make bench`'s business, not a test's).
    assert floor["rps"] > 0
    assert 0 < floor["p50_ms"] <= floor["p99_ms"]
    assert (floor["baseline"], floor["ratio"]) == (None, None)
    # The table on stdout carries the same row as the JSON.
    header, row = proc.stdout.splitlines()[:2]
    assert header.split()[:2] == ["scenario", "throughput"]
    assert row.split()[:3] == ["floor", f"{floor['rps']:,.1f}", "req/s"]
    # --json writes only there: a test run never replaces the committed latest.json.
    assert (latest.stat().st_mtime_ns if latest.exists() else None) == before


def test_a_real_one_second_run_of_the_grpc_floor(tmp_path: Path) -> None:
    _, doc = _run_one_second(tmp_path, "grpc_floor")
    (row,) = doc["scenarios"]
    assert row["name"] == "grpc_floor"
    assert row["unit"] == "calls/s"
    assert row["errors"] == 0
    assert row["rps"] > 0  # calls were made and counted; their speed is `make bench`'s
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    # The server is the scenario's helper: what one call costs it is in the row.
    assert set(row["cpu_us_per_op"]) == {"grpc_floor"}
