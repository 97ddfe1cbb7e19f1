"""DICOM node spool: safe names, atomic durable writes, crash-state recovery; config parsing (no network)."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from edgeseg.errors import EdgesegError
from edgeseg.node.config import NodeConfig, parse_allow, parse_destination
from edgeseg.node.spool import Spool, safe_name

HOSTILE = ["../../etc/passwd", "/etc/passwd", "a/b/c", "..", ".", "", "1.2/../../x", "1.2.3\\..\\..", "1" * 65,
           "1.2." + "3" * 300, "é漢字.1", "1.2\x00.3", " 1.2", "1..2", "1.2.", "~root", "C:\\win"]


@pytest.mark.parametrize("uid", HOSTILE)
def test_hostile_uids_stay_inside_the_spool(tmp_path, uid):
    spool = Spool(tmp_path / "spool")
    name = safe_name(uid)
    assert name.startswith("h-") and len(name) == 42 and "/" not in name and name not in (".", "..")
    path = spool.store(uid, uid, b"DICM")
    assert path.resolve().parent.parent == (tmp_path / "spool" / "incoming").resolve()
    assert path.read_bytes() == b"DICM"


def test_valid_uids_are_kept_readable(tmp_path):
    assert safe_name("1.2.840.10008.5.1.4.1.1.4") == "1.2.840.10008.5.1.4.1.1.4"
    assert safe_name("1.2") != safe_name("1.2 ") and safe_name("a") != safe_name("b")


def test_store_is_all_or_nothing(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    real = os.replace

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        spool.store("1.2.3", "1.2.3.4", b"x" * 1000)
    monkeypatch.setattr(os, "replace", real)
    assert [p for p in (tmp_path / "spool" / "incoming").rglob("*") if p.is_file()] == []  # no file, no .part
    spool.store("1.2.3", "1.2.3.4", b"ok")
    assert spool.promote("1.2.3") and [p.name for p in (spool.ready / "1.2.3").iterdir()] == ["1.2.3.4.dcm"]


def test_promote_waits_for_writes_and_earlier_batches(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.store("1.2.3", "1.2.3.4", b"a")
    spool._writing["1.2.3"] += 1              # an instance of the series is being written right now
    assert not spool.promote("1.2.3")
    spool._writing.clear()
    assert spool.promote("1.2.3")
    spool.store("1.2.3", "1.2.3.5", b"b")      # a late instance while the first batch is not done
    assert not spool.promote("1.2.3") and (spool.incoming / "1.2.3").is_dir()


def _outbox(spool, uid, key, batch, *markers):
    seg = spool.root / f"{uid}.dcm"
    seg.write_bytes(b"SEG")
    entry = spool.outbox_put(seg, uid, {"key": key, "batch": batch})
    for m in markers:
        (entry / m).write_bytes(b"")
    return entry


def test_recover_resumes_every_crash_point(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.store("1.1", "1.1.1", b"acked")                                   # acked, not complete
    (spool.incoming / "1.1" / ".rx-x.part").write_bytes(b"half")            # received, never acked
    spool.store("2.2", "2.2.1", b"acked")
    spool.promote("2.2")                                                    # complete, not segmented
    kept = _outbox(spool, "9.1", "2.2", Spool.batch_id(spool.ready / "2.2"))  # segmented, ready/ not yet removed
    orphan = _outbox(spool, "9.2", "3.3", "0" * 16)                         # ready/ removed, not yet released
    sent = _outbox(spool, "9.3", "4.4", "0" * 16, "sent")                   # forwarded, not cleaned
    (spool.trash / "tmp1" / "5.5").mkdir(parents=True)                      # killed while deleting
    (spool.receiving / "tmpab12.dcm").write_bytes(b"half a data set")       # killed while pynetdicom wrote it
    counts = Spool(tmp_path / "spool").recover()
    assert counts == {"partial_received": 1, "partial_instances": 1, "sent_not_cleaned": 1, "released": 1, "incoming": 1, "ready": 1,
                      "outbox": 2, "dead_letter": 0}
    assert (kept / "pending").exists() and not (orphan / "pending").exists() and not sent.exists()
    assert spool.outbox_entries(sendable=True) == [orphan] and not list(spool.trash.iterdir())
    assert not list(spool.receiving.iterdir())
    assert json.loads((kept / "meta.json").read_text())["key"] == "2.2"
    assert _outbox(spool, "9.1", "x", "y") == kept  # same SEG UID again: no second entry


def test_destination_and_config_parsing(tmp_path):
    assert str(parse_destination("PACS@127.0.0.1:104")) == "PACS@127.0.0.1:104"
    assert parse_destination("A@[::1]:11112").host == "::1"
    for bad in ("PACS@host", "host:104", "WAYTOOLONGAETITLE1@h:1", "A@h:0", "A@h:99999"):
        with pytest.raises(EdgesegError):
            parse_destination(bad)
    assert parse_allow(" SCANNER1, PACS ,") == ("SCANNER1", "PACS")
    with pytest.raises(EdgesegError, match="nowhere"):
        NodeConfig(model=tmp_path / "m.onnx", spool=tmp_path)
    with pytest.raises(EdgesegError, match="AE title"):
        NodeConfig(model=tmp_path / "m.onnx", spool=tmp_path, out=tmp_path, allow_ae=("BAD\\AE",))


def test_undecodable_dataset_gets_a_failure_status(tmp_path):
    from edgeseg.node.scp import CANNOT_UNDERSTAND, make_store_handler

    class Broken:
        request = SimpleNamespace(AffectedSOPInstanceUID="1.2.3")
        assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title="X", address="127.0.0.1", port=1))

        @property
        def dataset(self):
            raise ValueError("corrupt element at offset 132")

    handler = make_store_handler(Spool(tmp_path / "spool"), lambda *a: None)
    assert handler(Broken()) == CANNOT_UNDERSTAND
    assert not list((tmp_path / "spool" / "incoming").iterdir())


def test_config_file_then_flags(tmp_path):
    """`edgeseg serve --config FILE`: the file's [serve] values, flags given on the command line win,
    defaults from NodeConfig; unknown keys are named with the nearest valid one."""
    from edgeseg.cli import build_parser
    from edgeseg.cli.serve_cmd import settings
    from edgeseg.node.config_file import node_config

    conf = tmp_path / "node.toml"
    conf.write_text('[serve]\nmodel = "m.onnx"\nspool = "sp"\nport = 1104\nforward = "PACS@10.0.0.5:104"\n'
                    'allow_ae = ["A", "B"]\n[runtime]\ntrt_cache = "cache"\n')
    args = build_parser().parse_args(["serve", "--config", str(conf), "--port", "2204", "--series-timeout", "3"])
    cfg = node_config(settings(args), str(conf))
    assert (cfg.port, cfg.series_timeout, cfg.allow_ae, str(cfg.trt_cache)) == (2204, 3.0, ("A", "B"), "cache")
    assert cfg.forward[0].host == "10.0.0.5" and cfg.ae_title == NodeConfig.ae_title and cfg.max_attempts == 100
    conf.write_text('[serve]\nmodel = "m.onnx"\nspool = "sp"\nseries_timout = 3\n')
    with pytest.raises(EdgesegError, match="unknown key 'series_timout' \\(did you mean 'series_timeout'\\?\\)"):
        settings(build_parser().parse_args(["serve", "--config", str(conf)]))
