"""PNG charts (matplotlib imported inside the functions only)."""
from __future__ import annotations

from pathlib import Path


def layer_chart(prediction, path, top: int = 20) -> Path:
    """Horizontal bar chart of the `top` slowest kernels, coloured by compute/memory bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = prediction.top_layers(top)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(layers) + 1.5))
    colors = ["tab:blue" if k.bound == "compute" else "tab:orange" for k in layers]
    ax.barh(range(len(layers)), [k.seconds * 1e3 for k in layers], color=colors)
    ax.set_yticks(range(len(layers)), ["+".join(k.ops) + f"  {k.name[-28:]}" for k in layers], fontsize=7)
    ax.set_xlabel("predicted ms (blue: compute bound, orange: memory bound)")
    ax.set_title(f"{prediction.model} on {prediction.device}/{prediction.backend} {prediction.precision.upper()}: "
                 f"{prediction.total_ms:.2f} ms", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def validation_chart(rows, path) -> Path:
    """Predicted vs published ms, log-log, fit rows and held-out rows marked apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for split, marker in (("fit", "o"), ("held-out", "s")):
        pts = [(r["published_ms"], r["predicted_ms"]) for r in rows if r["split"] == split]
        ax.scatter(*zip(*pts), marker=marker, label=split)
    lo = min(min(r["published_ms"], r["predicted_ms"]) for r in rows) * 0.8
    hi = max(max(r["published_ms"], r["predicted_ms"]) for r in rows) * 1.2
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="published ms (Jetson Nano)", ylabel="predicted ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
