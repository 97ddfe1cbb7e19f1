"""Compression from the papers: fixed-point QAT (Perone, Xu), TernaryNet and binary, Tucker-2 (Weber).

Schemes are looked up by name in `registry.py`; `pipeline.compress(recipe)` runs one recipe;
`export_compressed.py` turns a compressed model into ONNX that ONNX Runtime runs.
"""
