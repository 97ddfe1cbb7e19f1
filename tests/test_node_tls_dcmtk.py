"""DICOM over TLS with DCMTK's own tools on both sides of the node (issue #20): storescu +tls sends a series to a
node that requires client certificates, the node forwards the SEG to a storescp +tls, both with a test CA."""
from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from edgeseg.node.config import Destination  # noqa: E402
from node_helpers import HOST, TOOLS, free_port, needs_dcmtk, spool_files, wait_for  # noqa: E402
from runtime_fixtures import SAMPLE  # noqa: E402
from test_node_dicom import make_node, model  # noqa: E402,F401  (shared fixtures)
from test_node_limits import pki  # noqa: E402,F401

FILES = sorted(SAMPLE.glob("*.dcm"))[::6]


def storescu_tls(port: int, pki, files, cert: str | None = "client", timeout: float = 60):
    """DCMTK storescu over TLS, trusting the test CA; `cert` None connects with TLS but no client certificate."""
    auth = ["+tls", str(pki / f"{cert}.key"), str(pki / f"{cert}.pem")] if cert else ["+tla"]
    return subprocess.run([TOOLS["storescu"], *auth, "+cf", str(pki / "ca.pem"), "-rc", "-to", "5", "-ta", "5",
                           "-aet", "STORESCU", "-aec", "EDGESEG", "localhost", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=timeout)


@needs_dcmtk
def test_dcmtk_storescu_tls_in_and_storescp_tls_out(make_node, tmp_path, pki):
    rx_dir, rx_port = tmp_path / "rx", free_port()
    rx_dir.mkdir()
    log = open(tmp_path / "storescp.log", "ab")
    rx = subprocess.Popen([TOOLS["storescp"], "+tls", str(pki / "server.key"), str(pki / "server.pem"), "-ic",
                           "-aet", "FWD", "-od", str(rx_dir), "-ta", "5", "-ts", "10", str(rx_port)],
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        node = make_node(tls_cert=pki / "server.pem", tls_key=pki / "server.key", tls_client_ca=pki / "ca.pem",
                         forward=Destination("FWD", "localhost", rx_port), forward_tls=True, forward_ca=pki / "ca.pem")
        r = storescu_tls(node.port, pki, FILES)
        assert r.returncode == 0, r.stderr[-800:]
        assert wait_for(lambda: any(rx_dir.iterdir()) and not spool_files(tmp_path / "spool", "outbox"), 60), \
            "no SEG reached storescp over TLS"
        import pydicom

        segs = [pydicom.dcmread(p) for p in rx_dir.iterdir()]
        assert len(segs) == 1 and segs[0].Modality == "SEG"
        refs = {str(x.ReferencedSOPInstanceUID) for x in segs[0].ReferencedSeriesSequence[0].ReferencedInstanceSequence}
        assert refs == {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in FILES}
    finally:
        rx.terminate()
        rx.wait(10)
        log.close()


@needs_dcmtk
def test_dcmtk_storescu_without_client_certificate_is_refused(make_node, tmp_path, pki):
    node = make_node(out=tmp_path / "out", tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                     tls_client_ca=pki / "ca.pem")
    r = storescu_tls(node.port, pki, FILES[:1], cert=None)
    assert r.returncode != 0
    r = subprocess.run([TOOLS["storescu"], "-to", "5", "-ta", "5", "-aec", "EDGESEG", HOST, str(node.port),
                        str(FILES[0])], capture_output=True, text=True, timeout=60)   # plain TCP: no association
    assert r.returncode != 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("seg.dcm"))
