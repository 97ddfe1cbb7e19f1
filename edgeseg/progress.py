"""Progress display: rich when installed (train extra), a silent fallback otherwise."""
from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def progress(description: str, total: int, enabled: bool = True):
    """Yields `advance(n=1, **fields)`; fields (e.g. loss=0.3) are shown beside the bar."""
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    except ImportError:
        Progress = None
    if not enabled or Progress is None:
        yield lambda n=1, **fields: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, transient=not sys.stderr.isatty()) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields):
            info = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            bar.update(task, advance=n, **({"info": info} if fields else {}))

        yield advance
