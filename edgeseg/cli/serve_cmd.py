"""edgeseg serve MODEL.onnx --spool DIR ...: the runner as a DICOM node (C-STORE in, DICOM SEG out).

Settings come from NodeConfig's defaults, then `--config FILE` ([serve] table), then the flags given on
the command line; every flag here is a NodeConfig field of the same name (node/config_file.py).
"""
from __future__ import annotations

import sys

from edgeseg.node.config import NodeConfig

_D = {f: getattr(NodeConfig, f) for f in NodeConfig.__dataclass_fields__ if hasattr(NodeConfig, f)}
# (flag, type, help); the defaults shown are NodeConfig's
_SETTINGS = [
    ("--ae-title", str, "this node's AE title"),
    ("--port", int, "TCP port to listen on"),
    ("--bind", str, "address to listen on (127.0.0.1 for local only)"),
    ("--spool", str, "spool folder (received instances and unsent results; survives restarts)"),
    ("--out", str, "also keep seg.dcm, report.json, overlay.png per series here"),
    ("--forward", str, "C-STORE every SEG to this node, AE@HOST:PORT; repeat (or A@h:p,B@h:p) to send to several"),
    ("--allow-ae", str, "accept only these calling AE titles, A,B"),
    ("--series-timeout", float, "seconds without a new instance that end a series"),
    ("--threads", int, "CPU threads for inference (default: onnxruntime's)"),
    ("--trt-cache", str, "TensorRT engine cache folder (default ~/.cache/edgeseg/trt)"),
    ("--max-associations", int, "concurrent associations"),
    ("--max-pdu", int, "largest PDU accepted, bytes"),
    ("--acse-timeout", float, "seconds a new connection may take to send its association request"),
    ("--retry-max", float, "longest wait between two forward attempts, seconds"),
    ("--max-attempts", int, "forward attempts of one SEG before it goes to SPOOL/dead-letter/ (a permanent "
                            "refusal goes there at once)"),
    ("--retry-max-age", float, "seconds a destination may keep failing before the SEG goes to dead-letter/ (0: "
                               "no limit)"),
    ("--max-dataset-mb", float, "largest instance accepted (a bigger one is received to disk, then refused with "
                                "0xA700: the sender keeps it)"),
    ("--max-receive-mb", float, "hard ceiling: a data set past it is aborted (A-ABORT) while it arrives, 0 for none; "
                                "an over-cap one is also aborted once it would break the spool quota or free floor"),
    ("--max-series-instances", int, "instances per series"),
    ("--spool-quota-mb", float, "spool size limit, 0 for none"),
    ("--min-free-mb", float, "free space kept on the spool's disk"),
    ("--tls-cert", str, "this node's certificate (PEM): listen with TLS only"),
    ("--tls-key", str, "its private key (PEM)"),
    ("--tls-client-ca", str, "require client certificates signed by this CA (mutual TLS)"),
    ("--forward-ca", str, "CA to verify the destination with (default: the system's)"),
    ("--forward-cert", str, "client certificate for the destination (mutual TLS)"),
    ("--forward-key", str, "its private key"),
]


def _field(flag: str) -> str:
    return flag[2:].replace("-", "_")


def register(sub) -> None:
    p = sub.add_parser("serve", help="run as a DICOM node: receive series, segment, forward the DICOM SEG",
                       description="C-ECHO and C-STORE SCP. A series is complete when no instance arrived for "
                       "--series-timeout seconds; it is then segmented like 'edgeseg run' and the DICOM SEG is "
                       "sent to --forward and/or kept in --out. Every acknowledged instance is on disk in --spool "
                       "until its result is delivered; a restart resumes. Log: one JSON line per event on stderr. "
                       "Settings: NodeConfig's defaults < --config FILE < flags. "
                       "Exit code: 0 stopped by SIGTERM/SIGINT, 1 a worker died, 2 bad arguments/model/spool.")
    p.add_argument("model", nargs="?", help="self-describing ONNX model from 'edgeseg export'")
    p.add_argument("--config", default=None, help="TOML config file ([serve] table, keys = these flags' names "
                   "with underscores; deploy/edgeseg.toml)")
    for flag, kind, text in _SETTINGS:
        default = _D.get(_field(flag))
        shown = f" (default {default})" if default not in (None, "", ()) else ""
        extra = {"action": "append"} if flag == "--forward" else {}
        p.add_argument(flag, type=kind, default=None, help=text + shown, **extra)
    p.add_argument("--provider", default=None, choices=["auto", "tensorrt", "cuda", "cpu"],
                   help=f"execution provider (default {NodeConfig.provider})")
    p.add_argument("--forward-tls", action="store_true", default=None, help="forward over TLS")
    p.add_argument("--requeue-dead-letters", action="store_true", help="do not serve: move every result in "
                   "SPOOL/dead-letter/ back to the outbox (attempts reset), then exit")
    p.add_argument("--max-pending-age", type=float, default=None, metavar="SECONDS",
                   help="with --health and a spool: also fail when an item has waited longer than this")
    p.add_argument("--health", action="store_true", help="do not serve: exit 0 if a node answers C-ECHO on --port "
                   "(as --ae-title, calling as the first --allow-ae title or EDGESEG-HEALTH) and, with a spool, "
                   "its metrics are fresh; else 1")
    p.set_defaults(func=run)


def settings(args) -> dict:
    """The raw settings: the config file's [serve] values, overridden by the flags given."""
    from edgeseg.node.config_file import read_config_file

    values = read_config_file(args.config) if args.config else {}
    given = {_field(flag): getattr(args, _field(flag)) for flag, _, _ in _SETTINGS}
    given.update(model=args.model, provider=args.provider, forward_tls=args.forward_tls)
    values.update({k: v for k, v in given.items() if v is not None})
    return values


def _health(values: dict, max_pending_age) -> int:
    from edgeseg.node.config import parse_allow
    from edgeseg.node.health import echo

    bind, port = values.get("bind", NodeConfig.bind), int(values.get("port", NodeConfig.port))
    host = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    allow = values.get("allow_ae") or ()
    allow = parse_allow(",".join(allow) if isinstance(allow, (list, tuple)) else allow)
    tls_args = None
    if values.get("tls_cert"):  # our own node on loopback: present our certificate, do not verify the server's
        from edgeseg.node.tls import client_context

        tls_args = (client_context(cert=values["tls_cert"], key=values.get("tls_key"), verify=False), host)
    ok, why = echo(host, port, values.get("ae_title", NodeConfig.ae_title), allow[0] if allow else "EDGESEG-HEALTH",
                   tls_args=tls_args)
    if ok and values.get("spool"):
        from edgeseg.node.health import spool_health

        ok, more = spool_health(values["spool"], max_pending_age)
        why = f"{why}; {more}"
    print(f"edgeseg serve --health: {'ok' if ok else 'FAILED'} ({why})", file=sys.stderr)
    return 0 if ok else 1


def run(args) -> int:
    from pathlib import Path

    from edgeseg.errors import EdgesegError
    from edgeseg.node.config_file import node_config

    values = settings(args)
    if args.health:
        return _health(values, args.max_pending_age)
    if args.requeue_dead_letters:
        if not values.get("spool"):
            raise EdgesegError("--requeue-dead-letters needs --spool DIR")
        from edgeseg.node.spool import Spool

        n = Spool(Path(values["spool"])).requeue_dead_letters()
        print(f"edgeseg serve: {n} dead letter(s) moved back to the outbox", file=sys.stderr)
        return 0
    if not values.get("model") or not values.get("spool"):
        raise EdgesegError("serve needs MODEL.onnx and --spool DIR (or a --config file naming them; only --health "
                           "works without them)")
    cfg = node_config(values, args.config or "edgeseg serve")
    from edgeseg.node.service import Node

    node = Node(cfg)
    try:
        node.start()
    except OSError as exc:  # port in use, permission denied on a port < 1024...
        node.stop(1.0)
        raise EdgesegError(f"cannot listen on {cfg.bind}:{cfg.port} ({exc.strerror or exc})") from exc
    return node.serve_forever()
