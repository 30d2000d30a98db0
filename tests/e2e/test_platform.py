"""The running platform through the gateway: health, readiness, metrics, OpenAPI, errors."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.platform import SERVICES, LocalPlatform

pytestmark = pytest.mark.e2e


def test_health_is_ok(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_ready_names_every_dependency_up(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/ready")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"redis", *SERVICES}
    assert all(check["status"] == "up" for check in body["checks"].values())


def test_metrics_parse_and_count_http_requests(platform: LocalPlatform) -> None:
    httpx.get(platform.url + "/health")
    reply = httpx.get(platform.url + "/metrics")
    assert reply.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    requests = families["tandem_http_requests"]
    assert any(s.labels == {"route": "/health", "method": "GET", "status": "200"}
               for s in requests.samples if s.name.endswith("_total"))
    assert "tandem_http_request_duration_seconds" in families
    assert "tandem_grpc_client_handled" in families or "tandem_dependency_up" in families


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_serves_its_own_metrics(platform: LocalPlatform, service: str) -> None:
    reply = httpx.get(f"http://127.0.0.1:{platform.ports.metrics[service]}/metrics")
    assert reply.status_code == 200
    names = {f.name for f in text_string_to_metric_families(reply.text)}
    assert "tandem_grpc_server_handled" in names
    assert "tandem_dependency_up" in names


def test_openapi_documents_the_routes(platform: LocalPlatform) -> None:
    doc = httpx.get(platform.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert path in doc["paths"], path
    assert "Error" in doc["components"]["schemas"]


def test_swagger_ui_is_served_without_internet(platform: LocalPlatform) -> None:
    page = httpx.get(platform.url + "/docs")
    assert page.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    asset = httpx.get(platform.url + "/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.content) > 100_000


def test_unknown_path_gets_standard_error_body_with_request_id(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/no/such/thing")
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"]
    assert error["request_id"] == reply.headers["X-Request-Id"]


def test_client_request_id_is_echoed(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/no/such/thing", headers={"X-Request-Id": "client-abc-123"})
    assert reply.headers["X-Request-Id"] == "client-abc-123"
    assert reply.json()["error"]["request_id"] == "client-abc-123"


def test_wrong_method_is_405_with_error_body(platform: LocalPlatform) -> None:
    reply = httpx.post(platform.url + "/health")
    assert reply.status_code == 405
    assert reply.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in reply.headers.get("Allow", "")


def test_oversized_body_is_413_with_error_body(platform: LocalPlatform) -> None:
    reply = httpx.post(platform.url + "/health", content=b"x" * (2 * 1024 * 1024))
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "payload_too_large"


def test_security_headers_and_no_version_banner(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/health")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert "aiohttp" not in reply.headers.get("Server", "").lower()
    assert "python" not in reply.headers.get("Server", "").lower()


def test_cors_allows_only_configured_origins(base_env: dict[str, str]) -> None:
    from scripts.platform import running

    env = dict(base_env, CORS_ORIGINS="https://app.example")
    with running(env, github_standin=False, openai_standin=False) as plat:
        pre = httpx.options(plat.url + "/api/v1/me", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization"})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        simple = httpx.get(plat.url + "/health", headers={"Origin": "https://app.example"})
        assert simple.headers["Access-Control-Allow-Origin"] == "https://app.example"
        evil = httpx.get(plat.url + "/health", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in evil.headers
        tls = httpx.get(plat.url + "/health", headers={"X-Forwarded-Proto": "https"})
        assert tls.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("process", ["gateway", *SERVICES])
def test_metrics_pass_promtool_check_metrics(platform: LocalPlatform, process: str) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make tools` installs it)")
    url = (platform.url if process == "gateway"
           else f"http://127.0.0.1:{platform.ports.metrics[process]}") + "/metrics"
    httpx.get(platform.url + "/ready")  # make sure the request/gRPC metric families have samples
    result = subprocess.run([promtool, "check", "metrics"], input=httpx.get(url).text,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
