"""The node's bounds and its TLS: refusals are DICOM statuses (never success then loss), metrics and the
spool health check, DICOM over TLS with and without client certificates (a test CA made with openssl)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from edgeseg.node.peer import StorePeer  # noqa: E402
from edgeseg.cli import main  # noqa: E402
from edgeseg.node.config import Destination  # noqa: E402
from edgeseg.node import log  # noqa: E402
from edgeseg.node.health import echo  # noqa: E402
from node_helpers import HOST, spool_files, wait_for  # noqa: E402
from test_node_dicom import _send, make_node, model  # noqa: E402,F401  (shared fixtures)
from test_node_faults import _datasets  # noqa: E402


@pytest.mark.parametrize("limit,value,sent,acked", [("max_series_instances", 2, 3, 2), ("spool_quota_mb", 0.2, 3, 1),
                                                    ("min_free_mb", 1e9, 1, 0)])
def test_each_limit_refuses_with_out_of_resources(make_node, tmp_path, limit, value, sent, acked):
    node = make_node(out=tmp_path / "out", series_timeout=30, **{limit: value})
    codes = _send(node.port, _datasets(f"limit-{limit}", n=sent))
    assert codes == [0x0000] * acked + [0xA700] * (sent - acked), codes
    assert len(spool_files(tmp_path / "spool", "incoming")) == acked      # refused ones were never stored


def _events(capsys, name):
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("{") and json.loads(line)["event"] == name]


def test_dataset_over_the_cap_is_received_then_refused_with_out_of_resources(make_node, tmp_path, capsys):
    """130 kB instances against a 0.05 MB cap (the quota and the free floor allow it): each is received whole
    (to disk), answered 0xA700 on the same association (the sender keeps it), its file removed at once."""
    node = make_node(out=tmp_path / "out", series_timeout=30, max_dataset_mb=0.05, max_receive_mb=1)
    aborted, refused = log.counts["receive_aborted"], log.counts["dataset_refused"]
    assert _send(node.port, _datasets("limit-dataset", n=2)) == [0xA700, 0xA700]
    assert spool_files(tmp_path / "spool", "receiving") == []                # removed before the answer
    assert spool_files(tmp_path / "spool", "incoming") == []
    assert (log.counts["dataset_refused"] - refused, log.counts["receive_aborted"] - aborted) == (2, 0)
    assert node.metrics()["counters"]["dataset_refused"] == 2
    lines = _events(capsys, "dataset_refused")
    assert [(r["bytes"] > 100_000, r["max_dataset_mb"]) for r in lines] == [(True, 0.05)] * 2, lines
    assert echo(HOST, node.port, "EDGESEG", timeout=5)[0]                   # the next association is served


@pytest.mark.parametrize("limit,value,named", [("max_receive_mb", 0.08, "--max-receive-mb 0.08"),
                                               ("spool_quota_mb", 0.1, "--spool-quota-mb 0.1"),
                                               ("min_free_mb", 1e9, "--min-free-mb 1e+09")])
def test_dataset_over_the_cap_is_aborted_past_the_ceiling_quota_or_floor(make_node, tmp_path, capsys, limit, value,
                                                                         named):
    """Over the 0.05 MB cap, a 130 kB data set is aborted while it arrives once it passes --max-receive-mb or
    once receiving more would break the spool quota or the free-space floor; the partial file is swept."""
    node = make_node(out=tmp_path / "out", series_timeout=30, max_dataset_mb=0.05, **{limit: value})
    before = log.counts["receive_aborted"]
    assert _send(node.port, _datasets(f"limit-abort-{limit}", n=1)) == [None]
    assert log.counts["receive_aborted"] == before + 1
    assert spool_files(tmp_path / "spool", "incoming") == []
    assert wait_for(lambda: spool_files(tmp_path / "spool", "receiving") == [], 10), "partial data set left"
    assert log.counts["receive_aborted"] == before + 1                       # one line per aborted association
    assert echo(HOST, node.port, "EDGESEG", timeout=5)[0]                   # still serving
    [line] = _events(capsys, "receive_aborted")
    assert named in line["reason"] and 0.05 * 1024 * 1024 < line["bytes"] < 256 * 256 * 2, line  # < its pixels


def test_ceiling_under_the_cap_is_refused_at_start(model, tmp_path):  # noqa: F811
    from edgeseg.errors import EdgesegError
    from edgeseg.node.config import NodeConfig

    with pytest.raises(EdgesegError, match="--max-receive-mb 100 is under --max-dataset-mb 512"):
        NodeConfig(model=model, spool=tmp_path / "spool", out=tmp_path / "out", max_receive_mb=100)


def test_metrics_and_spool_health(make_node, tmp_path):
    node = make_node(out=tmp_path / "out", series_timeout=60)
    assert _send(node.port, _datasets("metrics", n=3)) == [0] * 3
    metrics = tmp_path / "spool" / "metrics.json"
    assert wait_for(lambda: metrics.is_file() and json.loads(metrics.read_text())["counters"].get("received") == 3, 10)
    m = json.loads(metrics.read_text())
    assert m["incoming"] == 1 and m["spool_bytes"] > 3 * 100_000 and m["oldest_pending_s"] >= 0
    assert m["peak_mb"] >= m["rss_mb"] > 10                               # the node's own memory, in MB
    args = ["serve", "--health", "--port", str(node.port), "--spool", str(tmp_path / "spool")]
    assert main(args) == 0
    # the series waits (60 s timeout): once the metrics (every 2 s) show it older than 0.5 s, unhealthy
    assert wait_for(lambda: main(args + ["--max-pending-age", "0.5"]) == 1, 8)
    node.stop(10)
    old = json.loads(metrics.read_text())
    old["ts"] -= 120
    metrics.write_text(json.dumps(old))
    from edgeseg.node.health import spool_health

    healthy, why = spool_health(tmp_path / "spool", None)
    assert not healthy and "stopped updating" in why


# TLS ----------------------------------------------------------------------------------------------------
def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by it."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=edgeseg test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


def _tls(pki, cert=None):
    from edgeseg.node.tls import client_context

    return (client_context(pki / "ca.pem", cert and pki / f"{cert}.pem", cert and pki / f"{cert}.key"), "localhost")


def test_tls_listener_speaks_tls_only(make_node, tmp_path, pki):
    node = make_node(out=tmp_path / "out", tls_cert=pki / "server.pem", tls_key=pki / "server.key")
    assert echo(HOST, node.port, "EDGESEG", timeout=5, tls_args=_tls(pki))[0]
    assert not echo(HOST, node.port, "EDGESEG", timeout=3)[0]              # plain TCP gets nothing
    assert main(["serve", "--health", "--port", str(node.port), "--tls-cert", str(pki / "server.pem"),
                 "--tls-key", str(pki / "server.key")]) == 0


def test_mutual_tls_requires_a_client_certificate(make_node, tmp_path, pki):
    node = make_node(out=tmp_path / "out", tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                     tls_client_ca=pki / "ca.pem")
    assert not echo(HOST, node.port, "EDGESEG", timeout=3, tls_args=_tls(pki))[0]
    assert echo(HOST, node.port, "EDGESEG", timeout=5, tls_args=_tls(pki, "client"))[0]


def test_forward_over_tls(make_node, tmp_path, pki):
    from edgeseg.node.tls import server_context

    peer = StorePeer(ssl_context=server_context(pki / "server.pem", pki / "server.key")).start()
    try:
        node = make_node(series_timeout=0.5, forward=Destination("FWD", "localhost", peer.port), forward_tls=True,
                         forward_ca=pki / "ca.pem")
        sent = _datasets("tls-forward", n=2)
        assert _send(node.port, sent) == [0, 0]
        assert wait_for(lambda: len(peer.datasets) == 1, 30), "no SEG over TLS"
        assert peer.references() == [{str(d.SOPInstanceUID) for d in sent}]
    finally:
        peer.stop()


def test_tls_files_are_checked_at_start(tmp_path):
    from edgeseg.errors import EdgesegError
    from edgeseg.node.tls import server_context

    with pytest.raises(EdgesegError, match="no such file"):
        server_context(tmp_path / "missing.pem", tmp_path / "missing.key")
    bad = Path(tmp_path / "bad.pem")
    bad.write_text("not a certificate")
    with pytest.raises(EdgesegError, match="cannot load"):
        server_context(bad, bad)
