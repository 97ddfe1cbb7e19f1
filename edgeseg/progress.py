"""Progress display: a rich bar on a terminal, a plain line every 10 % otherwise (CI logs, pipes)."""
from __future__ import annotations

import contextlib
import sys
import time


def _format(fields: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


@contextlib.contextmanager
def _plain(description: str, total: int):
    state = {"done": 0, "next": max(1, total // 10), "start": time.perf_counter()}

    def advance(n: int = 1, **fields):
        state["done"] += n
        if state["done"] >= state["next"] or state["done"] == total:
            state["next"] += max(1, total // 10)
            elapsed = time.perf_counter() - state["start"]
            print(f"{description}: {state['done']}/{total} ({elapsed:.0f} s) {_format(fields)}", file=sys.stderr, flush=True)

    yield advance


@contextlib.contextmanager
def progress(description: str, total: int, enabled: bool = True):
    """Yields `advance(n=1, **fields)`; fields (e.g. loss=0.3) are shown beside the bar."""
    if not enabled:
        yield lambda n=1, **fields: None
        return
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    except ImportError:
        Progress = None
    if Progress is None or not sys.stderr.isatty():
        with _plain(description, total) as advance:
            yield advance
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields):
            bar.update(task, advance=n, **({"info": _format(fields)} if fields else {}))

        yield advance
