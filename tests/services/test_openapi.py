"""The OpenAPI document is derived from the app's routes and the models they validate with."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from corral.services.http.app import make_app
from corral.services.http.openapi import openapi_document
from tests.services.conftest import LiveServer
from tests.services.test_http_api import call


def document(server: LiveServer) -> dict[str, object]:
    status, body, _ = call(server, "GET", "/api/v1/openapi.json", token=None)
    assert status == 200
    doc: dict[str, object] = json.loads(body)
    return doc


def routes_of(server: LiveServer) -> set[tuple[str, str]]:
    """(method, path) of every route the running app has, alternations spelled out."""
    assert server.server.http is not None
    out = set()
    for route in server.server.http.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method in ("HEAD", "*") or not info:
            continue
        paths = [info.get("path") or info["formatter"]]
        groups = (
            dict(re.findall(r"\(\?P<(\w+)>([^()]*)\)", info["pattern"].pattern))
            if ("pattern" in info)
            else {}
        )
        for name, regex in groups.items():  # a choice of words: one path per word
            if "|" in regex and "{" not in regex:
                paths = [p.replace(f"{{{name}}}", v) for p in paths for v in regex.split("|")]
        out |= {(route.method.lower(), p) for p in paths}
    return out


def test_the_document_lists_exactly_the_routes_the_app_has(live_server: LiveServer) -> None:
    doc = document(live_server)
    paths = doc["paths"]
    assert isinstance(paths, dict)
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert documented == routes_of(live_server)
    assert ("post", "/api/v1/networks") in documented  # not /api/v1/{kind}


def test_request_bodies_are_the_models_the_routes_validate_with(live_server: LiveServer) -> None:
    doc = document(live_server)
    paths: dict[str, dict[str, dict[str, object]]] = doc["paths"]  # type: ignore[assignment]
    schemas: dict[str, dict[str, object]] = doc["components"]["schemas"]  # type: ignore[index]

    def body_ref(method: str, path: str) -> str:
        body = paths[path][method]["requestBody"]
        ref: str = body["content"]["application/json"]["schema"]["$ref"]  # type: ignore[index]
        return ref.rsplit("/", 1)[-1]

    assert body_ref("post", "/api/v1/networks") == "Network"
    assert body_ref("post", "/api/v1/profiles") == "Profile"
    assert body_ref("post", "/api/v1/nodes") == "NodesAdd"
    assert body_ref("post", "/api/v1/boot/self/state") == "StateReport"
    assert body_ref("post", "/api/v1/enroll-codes") == "EnrollCodeRequest"
    assert "names" in schemas["NodesAdd"]["required"]  # type: ignore[operator]
    assert "Cluster" in schemas  # inside ApplyRequest
    # every route that reads a JSON body declares it; the rest take none
    for path, ops in paths.items():
        for method, op in ops.items():
            if method in ("post", "patch", "put") and path.startswith("/api/v1/"):
                # no body: the token spend, the end of an install
                bodiless = path in ("/api/v1/boot/self/credential", "/api/v1/boot/self/installed")
                assert ("requestBody" in op) != bodiless, (method, path)
    # a script's output is raw bytes, bounded by the route's own limit
    output = paths["/api/v1/boot/self/scripts/{kind}"]["post"]
    assert list(output["requestBody"]["content"]) == ["application/octet-stream"]  # type: ignore[index]
    assert "413" in output["responses"]  # type: ignore[operator]
    assert paths["/api/v1/nodes"]["get"]["security"] == [{"admin": []}]
    assert paths["/api/v1/boot/self"]["get"]["security"] == [{"node": []}]
    assert "security" not in paths["/boot/{mac}.ipxe"]["get"]


def test_a_body_outside_its_schema_is_a_clear_400(live_server: LiveServer) -> None:
    for path, body, word in [
        ("/api/v1/nodes", {"data": {}}, "names"),
        ("/api/v1/nodes", {"names": "n1", "colour": 1}, "colour"),
        ("/api/v1/apply", {"cluster": {}, "prune": "perhaps"}, "prune"),
        ("/api/v1/enroll-codes", {"minutes": 0}, "minutes"),
    ]:
        status, reply, _ = call(live_server, "POST", path, body)
        assert status == 400, (path, body)
        assert word in json.loads(reply)["error"], reply


def test_the_document_needs_no_running_server() -> None:
    app = make_app(None)  # type: ignore[arg-type]  # routes only: no context is read
    doc = openapi_document(app)
    assert "/api/v1/enroll-codes" in doc["paths"]


def test_malformed_bodies_on_declared_routes_are_400_not_500(live_server: LiveServer) -> None:
    for raw in (b"\xff\xfe{", b"[" * 100_000 + b"]" * 100_000, b"{not json"):
        req = urllib.request.Request(live_server.url + "/api/v1/nodes", data=raw, method="POST")
        req.add_header("Authorization", f"Bearer {live_server.token}")
        try:
            urllib.request.urlopen(req, timeout=10)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 400, raw[:10]
