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
from node_helpers import HOST, TOOLS, needs_dcmtk, spool_files, wait_for  # noqa: E402
from runtime_fixtures import SAMPLE  # noqa: E402
from test_node_dicom import _send, make_node, model  # noqa: E402,F401  (shared fixtures)
from test_node_faults import _datasets  # noqa: E402


@pytest.mark.parametrize("limit,value,sent,acked", [("max_series_instances", 2, 3, 2), ("spool_quota_mb", 0.2, 3, 1)])
def test_each_limit_refuses_with_out_of_resources(make_node, tmp_path, limit, value, sent, acked):
    """On one association (accepted: the spool was empty) the instance that breaks a limit gets 0xA700."""
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


def _shrinking_disk(monkeypatch, spool, free_mb):
    """The spool's disk as the node sees it: `free_mb` free, less what is in receiving/ (the floor is crossed
    while a data set arrives, whatever else is written to the real disk meanwhile)."""
    real = shutil.disk_usage

    def usage(path):
        rx = 0
        for f in (spool / "receiving").glob("*"):
            try:
                rx += f.stat().st_size
            except OSError:      # removed between the listing and the stat
                pass
        return real(path)._replace(free=int(free_mb * 1024 * 1024) - rx)
    monkeypatch.setattr(shutil, "disk_usage", usage)


@pytest.mark.parametrize("limit,value,named", [("max_receive_mb", 0.08, "--max-receive-mb 0.08"),
                                               ("spool_quota_mb", 0.1, "--spool-quota-mb 0.1"),
                                               ("min_free_mb", 10, "--min-free-mb 10")])
def test_dataset_over_the_cap_is_aborted_past_the_ceiling_quota_or_floor(make_node, tmp_path, capsys, monkeypatch,
                                                                         limit, value, named):
    """Over the 0.05 MB cap, a 130 kB data set is aborted while it arrives once it passes --max-receive-mb or
    once receiving more would break the spool quota or the free-space floor (10 MB, with 10.03 MB free before
    it: the association is accepted); the partial file is swept."""
    if limit == "min_free_mb":
        _shrinking_disk(monkeypatch, tmp_path / "spool", value + 0.03)
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


def _associate(port, ds):
    from pynetdicom import AE

    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = ae.network_timeout = 10
    ae.add_requested_context(ds.SOPClassUID, str(ds.file_meta.TransferSyntaxUID))
    return ae.associate(HOST, port, ae_title="EDGESEG")


@pytest.mark.parametrize("limit,value,named", [("spool_quota_mb", 0.2, "--spool-quota-mb 0.2"),
                                               ("min_free_mb", 1e9, "--min-free-mb 1e+09")])
def test_full_spool_rejects_storage_associations_and_answers_echo(make_node, tmp_path, capsys, limit, value, named):
    """The spool already over its quota (a 0.3 MB file kept in failed/) or its disk under the floor: a storage
    association is rejected before any data set is sent — A-ASSOCIATE-RJ rejected-transient, service provider
    (presentation), local limit exceeded — nothing reaches receiving/ or incoming/; C-ECHO is still answered.
    Once the spool is back under its quota, storage associations are accepted again."""
    spool = tmp_path / "spool"
    filler = spool / "failed" / "kept.bin"
    filler.parent.mkdir(parents=True)
    filler.write_bytes(b"\0" * 300_000)
    node = make_node(out=tmp_path / "out", series_timeout=30, **{limit: value})
    [ds] = _datasets(f"full-{limit}", n=1)
    assoc = _associate(node.port, ds)
    assert assoc.is_rejected and not assoc.is_established
    rj = assoc.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02), rj
    [line] = _events(capsys, "association_rejected")
    assert line["reason"].startswith("spool full: ") and named in line["reason"] and line["calling_ae"] == "PYSCU", line
    assert spool_files(spool, "receiving") == [] and spool_files(spool, "incoming") == []
    assert echo(HOST, node.port, "EDGESEG", timeout=5)[0]                   # Verification-only: accepted
    if limit == "spool_quota_mb":
        filler.unlink()
        time.sleep(2.1)                                                      # the usage walk is at most 2 s old
        assert _send(node.port, [ds]) == [0x0000]


@needs_dcmtk
def test_storescu_sees_the_rejection_and_the_abort(make_node, tmp_path):
    """What DCMTK's storescu reports: a full spool (under the free floor) rejects its association; a data set
    over the cap that would break the quota while it arrives aborts it. Never a success (non-zero exit)."""
    sample = str(next(iter(sorted(SAMPLE.glob("*.dcm")))))
    full = make_node(spool=tmp_path / "full", out=tmp_path / "out1", min_free_mb=1e9)
    r = subprocess.run([TOOLS["storescu"], "-aec", "EDGESEG", HOST, str(full.port), sample], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "Rejected Transient" in r.stderr and "Local Limit Exceeded" in r.stderr, r.stderr
    cap = make_node(spool=tmp_path / "cap", out=tmp_path / "out2", series_timeout=30, max_dataset_mb=0.05,
                    spool_quota_mb=0.1)
    r = subprocess.run([TOOLS["storescu"], "-aec", "EDGESEG", HOST, str(cap.port), sample], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "Store Failed" in r.stderr and "Peer aborted Association" in r.stderr, r.stderr
    assert spool_files(tmp_path / "cap", "incoming") == []


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
