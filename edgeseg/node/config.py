"""NodeConfig: everything `edgeseg serve` was told, validated once (frozen)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgeseg.errors import EdgesegError

_AE = re.compile(r"[ -~]{1,16}")  # AE titles: 1-16 printable ASCII characters (no backslash checked below)


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def key(self) -> str:
        """A file-name-safe name of this destination (its outbox markers, its dead letters)."""
        from edgeseg.safe_paths import readable_name

        return readable_name(f"{self.ae_title}_{self.host}_{self.port}") or "dest"


@dataclass(frozen=True)
class NodeConfig:
    model: Path
    spool: Path
    ae_title: str = "EDGESEG"
    port: int = 11112
    bind: str = "0.0.0.0"
    out: Path | None = None
    forward: tuple = ()             # Destination, ...: every SEG goes to each (fan-out), each tracked apart
    allow_ae: tuple[str, ...] = ()
    series_timeout: float = 10.0
    threads: int | None = None
    provider: str = "auto"
    trt_cache: Path | None = None   # TensorRT engine cache folder (default ~/.cache/edgeseg/trt)
    max_associations: int = 8
    max_pdu: int = 65536            # bytes we accept per PDU (advertised to the peer)
    network_timeout: float = 60.0   # idle socket
    acse_timeout: float = 5.0       # a connection that sends no association request is dropped after this:
                                    # idle sockets must not hold the association slots for long
    dimse_timeout: float = 60.0     # waiting for a DIMSE message
    retry_base: float = 1.0         # forward back-off: base * 2**(attempt-1), capped
    retry_max: float = 60.0
    max_attempts: int = 100         # forward attempts of one result before it goes to dead-letter/
    retry_max_age: float = 86400.0  # seconds since a destination's first failure before it goes there too; 0: none
    # bounded resources: a refusal (0xA700, the sender keeps the image) instead of accepting and losing
    max_dataset_mb: float = 512.0   # one received instance; a bigger one is received to disk, then refused
    max_receive_mb: float = 2048.0  # hard ceiling: a data set past it is aborted while it arrives; 0: none (the
                                    # quota and the free-space floor still abort an over-cap one)
    max_series_instances: int = 10000
    spool_quota_mb: float = 16384.0  # everything in the spool; 0: no quota
    min_free_mb: float = 512.0      # free space left on the spool's disk
    # DICOM over TLS (node/tls.py)
    tls_cert: Path | None = None    # with tls_key: the listening side speaks TLS only
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # require client certificates signed by this CA (mutual TLS)
    forward_tls: bool = False
    forward_ca: Path | None = None  # verify the destination against this CA (default: the system's)
    forward_cert: Path | None = None  # client certificate for a destination that requires one
    forward_key: Path | None = None

    def __post_init__(self):
        if isinstance(self.forward, Destination):
            object.__setattr__(self, "forward", (self.forward,))
        elif self.forward is None:
            object.__setattr__(self, "forward", ())
        else:
            object.__setattr__(self, "forward", tuple(self.forward))
        if len({d.key for d in self.forward}) != len(self.forward):
            raise EdgesegError(f"--forward: a destination is given twice ({', '.join(map(str, self.forward))})")
        for title in (self.ae_title, *self.allow_ae):
            check_ae(title)
        if not 0 <= self.port <= 65535:
            raise EdgesegError(f"--port {self.port}: must be 0..65535")
        if self.series_timeout <= 0:
            raise EdgesegError("--series-timeout must be > 0 seconds")
        if self.max_attempts < 1:
            raise EdgesegError("--max-attempts must be >= 1")
        if self.retry_max_age < 0:
            raise EdgesegError("--retry-max-age must be >= 0 seconds")
        for name in ("max_dataset_mb", "max_receive_mb", "max_series_instances", "spool_quota_mb", "min_free_mb"):
            if getattr(self, name) < 0:
                raise EdgesegError(f"--{name.replace('_', '-')} must be >= 0")
        if self.max_receive_mb and self.max_dataset_mb and self.max_receive_mb < self.max_dataset_mb:
            raise EdgesegError(f"--max-receive-mb {self.max_receive_mb:g} is under --max-dataset-mb "
                               f"{self.max_dataset_mb:g}: it must be at least the largest data set accepted")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise EdgesegError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise EdgesegError("--tls-client-ca needs --tls-cert/--tls-key (the listening side must speak TLS)")
        if self.out is not None:
            out, spool = Path(self.out).resolve(), Path(self.spool).resolve()
            if out == spool or spool in out.parents:
                raise EdgesegError(f"--out {self.out}: must not be the spool or inside it ({self.spool})")
        if not self.forward and self.out is None:
            raise EdgesegError("nowhere to put results: give --forward AE@HOST:PORT and/or --out DIR")


def check_ae(title: str) -> str:
    if not _AE.fullmatch(title) or "\\" in title or not title.strip():
        raise EdgesegError(f"AE title {title!r}: 1-16 printable ASCII characters, no backslash")
    return title


def parse_destination(text: str) -> Destination:
    """'AE@HOST:PORT' -> Destination, or a one-line EdgesegError."""
    m = re.fullmatch(r"([^@]{1,16})@([^:@]+|\[[0-9a-fA-F:]+\]):(\d{1,5})", text.strip())
    if not m:
        raise EdgesegError(f"--forward {text!r}: expected AE@HOST:PORT, e.g. PACS@10.0.0.5:104")
    port = int(m.group(3))
    if not 0 < port <= 65535:
        raise EdgesegError(f"--forward {text!r}: port must be 1..65535")
    return Destination(check_ae(m.group(1)), m.group(2).strip("[]"), port)


def parse_allow(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def dest_key(text: str) -> str:
    """Destination.key of an 'AE@HOST:PORT' string (as stored in an outbox entry's meta.json)."""
    return parse_destination(text).key
