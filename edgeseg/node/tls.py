"""DICOM over TLS (PS3.15 B.1) with Python's ssl module, as pynetdicom takes it: a server context for the
listening side (optionally requiring client certificates: mutual TLS) and a client context for the
forward. TLS 1.2 at least; certificates are verified against the given CA file, or the system's."""
from __future__ import annotations

import ssl
from pathlib import Path

from edgeseg.errors import EdgesegError


def _file(path, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise EdgesegError(f"{what} {p}: no such file")
    return str(p)


def _load_chain(ctx: ssl.SSLContext, cert, key, what: str) -> None:
    try:
        ctx.load_cert_chain(_file(cert, f"{what} certificate"), _file(key, f"{what} key") if key else None)
    except ssl.SSLError as exc:
        raise EdgesegError(f"{what} certificate {cert} / key {key}: cannot load ({exc.reason or exc})") from exc


def _load_ca(ctx: ssl.SSLContext, ca, what: str) -> None:
    try:
        ctx.load_verify_locations(cafile=_file(ca, what))
    except ssl.SSLError as exc:
        raise EdgesegError(f"{what} {ca}: cannot load ({exc.reason or exc})") from exc


def server_context(cert, key, client_ca=None) -> ssl.SSLContext:
    """The listening side's context; with `client_ca`, a peer must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key, "--tls-cert")
    if client_ca:
        _load_ca(ctx, client_ca, "--tls-client-ca")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca=None, cert=None, key=None, verify: bool = True) -> ssl.SSLContext:
    """The forward's (or the health check's) context: the peer verified against `ca` (system CAs when
    None) and its host name checked; `cert`/`key` present a client certificate for mutual TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:  # the health check of our own node on loopback: identity is not the question there
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca:
        _load_ca(ctx, ca, "--forward-ca")
    else:
        ctx.load_default_certs()
    if cert:
        _load_chain(ctx, cert, key, "client")
    return ctx
