"""edgeseg serve MODEL.onnx --spool DIR ...: the runner as a DICOM node (C-STORE in, DICOM SEG out)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("serve", help="run as a DICOM node: receive series, segment, forward the DICOM SEG",
                       description="C-ECHO and C-STORE SCP. A series is complete when no instance arrived for "
                       "--series-timeout seconds; it is then segmented like 'edgeseg run' and the DICOM SEG is "
                       "sent to --forward and/or kept in --out. Every acknowledged instance is on disk in --spool "
                       "until its result is delivered; a restart resumes. Log: one JSON line per event on stderr. "
                       "Exit code: 0 stopped by SIGTERM/SIGINT, 1 a worker died, 2 bad arguments/model/spool.")
    p.add_argument("model", nargs="?", help="self-describing ONNX model from 'edgeseg export'")
    p.add_argument("--ae-title", default="EDGESEG", help="this node's AE title (default EDGESEG)")
    p.add_argument("--port", type=int, default=11112, help="TCP port to listen on (default 11112)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all; 127.0.0.1 for local only)")
    p.add_argument("--spool", help="spool folder (received instances and unsent results; survives restarts)")
    p.add_argument("--out", default=None, help="also keep seg.dcm, report.json, overlay.png per series here")
    p.add_argument("--forward", default=None, metavar="AE@HOST:PORT", help="C-STORE every SEG to this node")
    p.add_argument("--allow-ae", default=None, metavar="A,B", help="accept only these calling AE titles")
    p.add_argument("--series-timeout", type=float, default=10.0, help="seconds without a new instance that end a "
                   "series (default 10)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: onnxruntime's)")
    p.add_argument("--provider", default="auto", choices=["auto", "tensorrt", "cuda", "cpu"])
    p.add_argument("--max-associations", type=int, default=8, help="concurrent associations (default 8)")
    p.add_argument("--max-pdu", type=int, default=65536, help="largest PDU accepted, bytes (default 65536)")
    p.add_argument("--retry-max", type=float, default=60.0, metavar="SECONDS",
                   help="longest wait between two forward attempts, seconds (default 60)")
    p.add_argument("--max-attempts", type=int, default=100, help="forward attempts of one SEG before it goes to "
                   "SPOOL/dead-letter/ (default 100); a permanent refusal goes there at once")
    p.add_argument("--requeue-dead-letters", action="store_true", help="do not serve: move every result in "
                   "SPOOL/dead-letter/ back to the outbox (attempts reset), then exit")
    p.add_argument("--acse-timeout", type=float, default=5.0, help="seconds a new connection may take to send its "
                   "association request (default 5)")
    g = p.add_argument_group("bounded resources (a refused instance gets 0xA700: the sender keeps it)")
    g.add_argument("--max-dataset-mb", type=float, default=512.0, help="largest instance accepted (default 512)")
    g.add_argument("--max-series-instances", type=int, default=10000, help="instances per series (default 10000)")
    g.add_argument("--spool-quota-mb", type=float, default=16384.0, help="spool size limit, 0 for none (default 16384)")
    g.add_argument("--min-free-mb", type=float, default=512.0, help="free space kept on the spool's disk (default 512)")
    t = p.add_argument_group("DICOM over TLS")
    t.add_argument("--tls-cert", default=None, help="this node's certificate (PEM): listen with TLS only")
    t.add_argument("--tls-key", default=None, help="its private key (PEM)")
    t.add_argument("--tls-client-ca", default=None, help="require client certificates signed by this CA (mutual TLS)")
    t.add_argument("--forward-tls", action="store_true", help="forward over TLS")
    t.add_argument("--forward-ca", default=None, help="CA to verify the destination with (default: the system's)")
    t.add_argument("--forward-cert", default=None, help="client certificate for the destination (mutual TLS)")
    t.add_argument("--forward-key", default=None, help="its private key")
    p.add_argument("--max-pending-age", type=float, default=None, metavar="SECONDS",
                   help="with --health and --spool: also fail when an item has waited longer than this")
    p.add_argument("--health", action="store_true", help="do not serve: exit 0 if a node answers C-ECHO on --port "
                   "(as --ae-title, calling as the first --allow-ae title or EDGESEG-HEALTH), else 1")
    p.set_defaults(func=run)


def _path(value):
    from pathlib import Path

    return Path(value) if value else None


def run(args) -> int:
    from pathlib import Path

    from edgeseg.errors import EdgesegError
    from edgeseg.node.config import NodeConfig, parse_allow, parse_destination

    allow = parse_allow(args.allow_ae)
    if args.health:
        from edgeseg.node.health import echo

        host = "127.0.0.1" if args.bind in ("0.0.0.0", "::", "") else args.bind
        tls_args = None
        if args.tls_cert:  # our own node on loopback: present our certificate, do not verify the server's
            from edgeseg.node.tls import client_context

            tls_args = (client_context(cert=args.tls_cert, key=args.tls_key, verify=False), host)
        ok, why = echo(host, args.port, args.ae_title, allow[0] if allow else "EDGESEG-HEALTH", tls_args=tls_args)
        if ok and args.spool:
            from edgeseg.node.health import spool_health

            ok, more = spool_health(args.spool, args.max_pending_age)
            why = f"{why}; {more}"
        print(f"edgeseg serve --health: {'ok' if ok else 'FAILED'} ({why})", file=sys.stderr)
        return 0 if ok else 1
    if args.requeue_dead_letters:
        if not args.spool:
            raise EdgesegError("--requeue-dead-letters needs --spool DIR")
        from edgeseg.node.spool import Spool

        n = Spool(Path(args.spool)).requeue_dead_letters()
        print(f"edgeseg serve: {n} dead letter(s) moved back to the outbox", file=sys.stderr)
        return 0
    if not args.model or not args.spool:
        raise EdgesegError("serve needs MODEL.onnx and --spool DIR (only --health works without them)")
    cfg = NodeConfig(model=Path(args.model), spool=Path(args.spool), ae_title=args.ae_title, port=args.port,
                     bind=args.bind, out=Path(args.out) if args.out else None,
                     forward=parse_destination(args.forward) if args.forward else None, allow_ae=allow,
                     series_timeout=args.series_timeout, threads=args.threads, provider=args.provider,
                     max_associations=args.max_associations, max_pdu=args.max_pdu, retry_max=args.retry_max,
                     max_attempts=args.max_attempts, acse_timeout=args.acse_timeout,
                     max_dataset_mb=args.max_dataset_mb, max_series_instances=args.max_series_instances,
                     spool_quota_mb=args.spool_quota_mb, min_free_mb=args.min_free_mb,
                     tls_cert=_path(args.tls_cert), tls_key=_path(args.tls_key), tls_client_ca=_path(args.tls_client_ca),
                     forward_tls=args.forward_tls, forward_ca=_path(args.forward_ca),
                     forward_cert=_path(args.forward_cert), forward_key=_path(args.forward_key))
    from edgeseg.node.service import Node

    node = Node(cfg)
    try:
        node.start()
    except OSError as exc:  # port in use, permission denied on a port < 1024...
        node.stop(1.0)
        raise EdgesegError(f"cannot listen on {cfg.bind}:{cfg.port} ({exc.strerror or exc})") from exc
    return node.serve_forever()
