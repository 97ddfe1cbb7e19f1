"""DICOM node on loopback, in process: C-ECHO/C-STORE with DCMTK peers, allow-list, hostile input, forward retry."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from edgeseg.cli import main  # noqa: E402
from edgeseg.node.config import Destination, NodeConfig  # noqa: E402
from edgeseg.node.service import Node  # noqa: E402
from node_helpers import (HOST, StoreSCP, echo, free_port, needs_dcmtk, seg_references, spool_files,  # noqa: E402
                          storescu, wait_for)
from runtime_fixtures import SAMPLE, export_threshold_model  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_threshold_model(tmp_path_factory.mktemp("node-model") / "threshold.onnx")


@pytest.fixture
def make_node(model, tmp_path):
    nodes = []

    def make(**kw):
        kw.setdefault("spool", tmp_path / "spool")
        kw.setdefault("series_timeout", 1.0)
        node = Node(NodeConfig(model=model, bind=HOST, port=0, threads=1, retry_base=0.3, retry_max=1.0, **kw)).start()
        nodes.append(node)
        return node
    yield make
    for n in nodes:
        n.stop(10)


@pytest.fixture
def storescp(tmp_path):
    peers = []

    def make(port=None):
        peers.append(StoreSCP(tmp_path / f"rx{len(peers)}", port or free_port()))
        return peers[-1]
    yield make
    for p in peers:
        p.stop()


def _send(port, datasets, calling="PYSCU"):
    """pynetdicom SCU: C-STORE each dataset on one association; returns the status codes."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, str(ds.file_meta.TransferSyntaxUID))
    assoc = ae.associate(HOST, port, ae_title="EDGESEG")
    assert assoc.is_established
    codes = [getattr(assoc.send_c_store(ds), "Status", None) for ds in datasets]
    assoc.release()
    return codes


def test_acknowledged_instance_is_on_disk(make_node, tmp_path):
    import pydicom

    node = make_node(out=tmp_path / "out", series_timeout=30)
    ds = pydicom.dcmread(sorted(SAMPLE.glob("*.dcm"))[0])
    assert _send(node.port, [ds]) == [0x0000]
    files = spool_files(tmp_path / "spool", "incoming")   # checked right after the ack
    assert [f.name for f in files] == [f"{ds.SOPInstanceUID}.dcm"]
    assert pydicom.dcmread(files[0]).PixelData == ds.PixelData


def test_bad_instances_get_failure_status_and_node_stays_up(make_node, tmp_path):
    import pydicom

    node = make_node(out=tmp_path / "out", series_timeout=30)
    no_series = pydicom.dcmread(sorted(SAMPLE.glob("*.dcm"))[0])
    del no_series.SeriesInstanceUID
    no_pixels = pydicom.dcmread(sorted(SAMPLE.glob("*.dcm"))[1])
    del no_pixels.PixelData
    assert _send(node.port, [no_series, no_pixels]) == [0xA900, 0xA900]
    assert spool_files(tmp_path / "spool", "incoming") == []
    assert main(["serve", "--health", "--port", str(node.port)]) == 0


def test_health_fails_when_nobody_listens():
    assert main(["serve", "--health", "--port", str(free_port())]) == 1


@needs_dcmtk
def test_echoscu_and_allow_list(make_node, tmp_path):
    node = make_node(out=tmp_path / "out", allow_ae=("SCANNER1", "PACS"))
    assert echo(node.port, "EDGESEG", calling="SCANNER1")
    assert not echo(node.port, "EDGESEG", calling="INTRUDER")   # association rejected
    r = storescu(node.port, sorted(SAMPLE.glob("*.dcm"))[:2], calling="INTRUDER")
    assert r.returncode != 0 and spool_files(tmp_path / "spool", "incoming") == []
    assert echo(node.port, "EDGESEG", calling="PACS")


@needs_dcmtk
def test_garbage_and_aborts_do_not_take_the_node_down(make_node, tmp_path):
    import pydicom
    from pynetdicom import AE

    node = make_node(out=tmp_path / "out", series_timeout=30)
    for payload in (b"\x00" * 10, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x01\x00\xff\xff\xff\xff" + b"A" * 4000,
                    bytes(range(256)) * 8):
        with socket.create_connection((HOST, node.port), timeout=5) as s:
            s.sendall(payload)
    with socket.create_connection((HOST, node.port), timeout=5):
        pass                                                    # connect and hang up at once
    ae = AE(ae_title="PYSCU")
    ds = pydicom.dcmread(sorted(SAMPLE.glob("*.dcm"))[0])
    ae.add_requested_context(ds.SOPClassUID, str(ds.file_meta.TransferSyntaxUID))
    assoc = ae.associate(HOST, node.port, ae_title="EDGESEG")
    assert assoc.is_established
    assoc.abort()                                               # abort mid-association
    assert wait_for(lambda: echo(node.port, "EDGESEG"), 10)


@needs_dcmtk
def test_storescu_series_is_segmented_and_forwarded_exactly_once(make_node, storescp, tmp_path):
    rx = storescp().start()
    node = make_node(forward=Destination("FWD", HOST, rx.port))
    sources = sorted(SAMPLE.glob("*.dcm"))
    r = storescu(node.port, sources)
    assert r.returncode == 0, r.stderr[-500:]
    assert wait_for(lambda: rx.files() and not spool_files(tmp_path / "spool", "outbox"), 40), "no SEG forwarded"
    time.sleep(1.5)                                             # anything more would be a duplicate
    assert rx.received() == 1 and len(rx.files()) == 1
    import pydicom

    refs = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sources}
    assert seg_references(rx.files()[0]) == refs
    assert all(spool_files(tmp_path / "spool", s) == [] for s in ("incoming", "ready", "outbox", "failed", "work"))


@needs_dcmtk
def test_forward_destination_down_then_up(make_node, storescp, tmp_path):
    port = free_port()
    node = make_node(forward=Destination("FWD", HOST, port))
    assert storescu(node.port, sorted(SAMPLE.glob("*.dcm"))[::4]).returncode == 0
    outbox = tmp_path / "spool" / "outbox"
    assert wait_for(lambda: spool_files(tmp_path / "spool", "outbox"), 30), "no result in the outbox"
    import json

    def attempts():
        return sum(json.loads(p.read_text())["attempts"] for p in outbox.glob("*/attempts-*.json"))
    assert wait_for(lambda: attempts() >= 2, 10), "no retry while the peer is down"
    assert list(outbox.iterdir())                               # a failed forward stays on disk
    rx = storescp(port).start()
    assert wait_for(lambda: rx.files() and not list(outbox.iterdir()), 15), "result never delivered"
    time.sleep(1.5)
    assert rx.received() == 1 and len(rx.files()) == 1
