"""The node: model session, spool recovery, scheduler and forwarder threads, the listening AE."""
from __future__ import annotations

import signal
import threading
import time

from edgeseg.node import log, require_pynetdicom
from edgeseg.node.config import NodeConfig
from edgeseg.node.spool import Spool


class Node:
    def __init__(self, cfg: NodeConfig):
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.server = None
        self.threads: list[threading.Thread] = []

    def start(self) -> "Node":
        """Load the model, resume the spool, then listen. Raises EdgesegError on a bad model or spool."""
        require_pynetdicom()
        from edgeseg.node.forward import Forwarder
        from edgeseg.node.scheduler import Scheduler
        from edgeseg.node.scp import start_server
        from edgeseg.runtime.pipeline import check_out_dir
        from edgeseg.results.seg_writer import require_highdicom
        from edgeseg.runtime.session import Segmenter

        cfg = self.cfg
        self._counts_at_start = dict(log.counts)  # a process may run several nodes (tests): count this one's
        log.route_pynetdicom()
        t0 = time.perf_counter()
        segmenter = Segmenter(cfg.model, cfg.provider, cfg.threads, cfg.trt_cache)
        require_highdicom()
        check_out_dir(cfg.spool)
        if cfg.out is not None:
            check_out_dir(cfg.out)
        self.spool = Spool(cfg.spool)
        log.event("recovered", **self.spool.recover())
        self.scheduler = Scheduler(cfg, self.spool, segmenter, self.stop_event)
        self.threads = [self.scheduler]
        if cfg.forward:
            self.threads.append(Forwarder(cfg, self.spool, self.stop_event))
        self.threads.append(threading.Thread(target=self._metrics_loop, name="edgeseg-metrics", daemon=True))
        for t in self.threads:
            t.start()
        from edgeseg.node.receive import receive_to_disk

        self._to_disk = receive_to_disk(self.spool.receiving)
        _, self.server = start_server(cfg, segmenter.contract.modality, self.spool, self.scheduler.note)
        log.event("started", ae_title=cfg.ae_title, bind=cfg.bind, port=self.port, model=cfg.model.name,
                  provider=segmenter.provider, modality=segmenter.contract.modality, forward=",".join(map(str, cfg.forward)),
                  out=str(cfg.out or ""), allow_ae=list(cfg.allow_ae), series_timeout=cfg.series_timeout,
                  receive_to_disk=self._to_disk, startup_s=round(time.perf_counter() - t0, 3))
        return self

    def metrics(self) -> dict:
        """Counters of the node's events plus the spool's state, as written to SPOOL/metrics.json."""
        sp = self.spool
        base = getattr(self, "_counts_at_start", {})
        counters = {k: v - base.get(k, 0) for k, v in log.counts.items() if v - base.get(k, 0)}
        from edgeseg.node.memory import memory

        return {"ts": round(time.time(), 3), "counters": counters, "spool_bytes": sp.usage_bytes(), **memory(),
                "oldest_pending_s": round(sp.oldest_pending_s(), 1), "incoming": len(sp.incoming_series()),
                "ready": len(sp.ready_series()), "outbox": len(sp.outbox_entries()),
                "dead_letter": sp.dead_letter_count()}

    def _metrics_loop(self, every_s: float = 2.0) -> None:
        import json

        from edgeseg.node.receive import sweep
        from edgeseg.node.spool import write_atomic

        stale = max(self.cfg.network_timeout, self.cfg.dimse_timeout) * 2
        while not self.stop_event.is_set():
            try:
                removed = sweep(self.spool.receiving, stale_s=stale)
                if removed:
                    log.event("partial_removed", files=removed, reason="left by an association that ended mid-data-set")
                write_atomic(self.spool.root / "metrics.json", json.dumps(self.metrics()).encode())
            except Exception as exc:  # a full disk must not stop the node: the health check sees stale metrics
                log.event("metrics_failed", level="warning", reason=f"{type(exc).__name__}: {str(exc)[:120]}")
            self.stop_event.wait(every_s)

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.cfg.port

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, let the current series finish, join the threads."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        if getattr(self, "_to_disk", False):
            from edgeseg.node.receive import receive_done

            receive_done(self.spool.receiving)
        log.event("stopped")

    def serve_forever(self) -> int:
        """Block until SIGTERM/SIGINT, then stop cleanly."""
        def on_signal(signum, _frame):
            log.event("signal", signal=signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not self.stop_event.wait(1.0):
            dead = [t.name for t in self.threads if not t.is_alive()]
            if dead:
                log.event("thread_died", level="error", threads=dead)
                self.stop()
                return 1  # systemd Restart=on-failure brings the node back; the spool resumes
        self.stop()
        return 0
