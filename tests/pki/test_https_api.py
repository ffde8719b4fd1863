"""The CLI drives a server over HTTPS when it trusts the cluster CA, and says what to do
when it does not."""

from __future__ import annotations

from pathlib import Path

from corral import pki
from tests.cli.conftest import Run, corral, home  # noqa: F401  (fixtures)
from tests.services.conftest import LiveServer
from tests.status.test_init_tls import tls_cluster  # noqa: F401  (fixture)


def test_the_cli_trusts_the_cluster_ca_given_with_ca(
    tls_cluster: tuple[LiveServer, str],  # noqa: F811
    corral: Run,  # noqa: F811
    tmp_path: Path,
) -> None:
    server, api_url = tls_cluster
    ca = pki.Pki(server.corral.settings.paths.pki).ca_cert
    args = ("--server", api_url, "--token", server.token)
    listed = corral(*args, "--ca", str(ca), "node", "list", "-o", "json")
    assert listed.code == 0, listed.err
    other = pki.Pki(tmp_path / "other")
    pki.ensure(other)
    refused = corral(*args, "--ca", str(other.ca_cert), "node", "list")
    assert refused.code == 1
    assert "not trusted" in refused.error_line and "--ca" in refused.error_line
    missing = corral(*args, "--ca", str(tmp_path / "nope.pem"), "node", "list")
    assert missing.code == 1 and "not found" in missing.error_line
