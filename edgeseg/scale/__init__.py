"""Archive scale: the runner's per-series function on a Ray cluster (`edgeseg run --engine ray`).
Heavy side only (`pip install '.[scale]'`); the light runtime never imports it."""
