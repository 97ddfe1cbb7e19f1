"""Cross-field checks of a training recipe at load time, so a bad value fails before any data is read, with
the file, the table and the key named."""
from __future__ import annotations

from edgeseg.errors import EdgesegError, nearest_key

SCALES = (1, 2, 4, 8)


def check_recipe(recipe, where: str) -> None:
    """Raise EdgesegError('<where>: [table] key = value: why') for the first value training cannot use."""
    from edgeseg.models import list_heads, list_models
    from edgeseg.preprocess import FITS, LOWRES_METHODS, NORMALIZATIONS

    m, s, t = recipe.model, recipe.data.slices, recipe.train
    fail = _failer(where)

    if m.name not in list_models():
        fail("model", "name", m.name, f"unknown backbone{nearest_key(m.name, list_models())}; known: "
                                      f"{', '.join(list_models())}")
    if m.head not in list_heads():
        fail("model", "head", m.head, f"unknown SR head{nearest_key(m.head, list_heads())}; known: "
                                      f"{', '.join(list_heads())}")
    _check_options(m, fail)
    if m.scale not in SCALES:
        fail("model", "scale", m.scale, f"must be one of {', '.join(map(str, SCALES))}")
    canvas = tuple(s.canvas)
    if len(canvas) != 2 or min(canvas) <= 0:
        fail("data.slices", "canvas", list(canvas), "must be two positive sizes [H, W]")
    if any(c % m.scale for c in canvas):
        fail("data.slices", "canvas", list(canvas), f"each size must be a multiple of [model] scale = {m.scale} "
                                                     "(the low-res input is the canvas / scale)")
    if s.normalization not in NORMALIZATIONS:
        fail("data.slices", "normalization", s.normalization,
             f"unknown{nearest_key(s.normalization, NORMALIZATIONS)}; known: {', '.join(NORMALIZATIONS)}")
    if s.fit not in FITS:
        fail("data.slices", "fit", s.fit, f"unknown{nearest_key(s.fit, FITS)}; known: {', '.join(FITS)}")
    if s.lowres_method not in LOWRES_METHODS:
        fail("data.slices", "lowres_method", s.lowres_method,
             f"unknown{nearest_key(s.lowres_method, LOWRES_METHODS)}; known: {', '.join(LOWRES_METHODS)}")
    lo, hi = s.clip_percentiles
    if not 0 <= lo < hi <= 100:
        fail("data.slices", "clip_percentiles", [lo, hi], "must satisfy 0 <= low < high <= 100")
    for key, value in (("epochs", t.epochs), ("batch_size", t.batch_size), ("threads", t.threads)):
        if value < 1:
            fail("train", key, value, "must be at least 1")
    if not t.lr > 0:
        fail("train", "lr", t.lr, "must be positive")
    if t.clean_epochs < 0:
        fail("train", "clean_epochs", t.clean_epochs, "must be 0 (no clean stage) or more")
    if t.clean_epochs and not t.clean_lr > 0:
        fail("train", "clean_lr", t.clean_lr, "must be positive")


def _check_options(m, fail, table: str = "model.options") -> None:
    """Option keys must be keyword arguments of the backbone's constructor; a value has its default's type (integer
    options non-negative) and, where the backbone lists them in `option_choices`, is one of the choices."""
    import inspect

    from edgeseg.models.registry import get_backbone_class

    cls = get_backbone_class(m.name)
    params = {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()
              if n not in ("self", "in_channels", "num_classes", "width")}
    accepted, choices = list(params), getattr(cls, "option_choices", {})
    for key, value in m.options.items():
        if key not in accepted:
            fail(table, key, value, f"not an option of backbone '{m.name}'{nearest_key(key, accepted)}; "
                                    f"known: {', '.join(accepted) or 'none'}")
        if isinstance(params[key], str):
            if not isinstance(value, str) or (key in choices and value not in choices[key]):
                fail(table, key, value, f"must be one of {', '.join(map(repr, choices.get(key, ())))}"
                     if key in choices else "must be a string")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(table, key, value, "must be a non-negative integer")


def check_options(model_config, table: str, where: str) -> None:
    """The option checks of a training recipe for options given elsewhere (a compression recipe's [scratch.options])."""
    _check_options(model_config, _failer(where), table)


def _failer(where: str):
    """-> fail(table, key, value, why): raise EdgesegError('<where>: [table] key = value: why')."""
    def fail(table: str, key: str, value, why: str):
        raise EdgesegError(f"{where}: [{table}] {key} = {value!r}: {why}")

    return fail
