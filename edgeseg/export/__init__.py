"""PyTorch -> ONNX -> onnxsim -> INT8 (QDQ) / FP16 ONNX, verified and self-describing.

One module per step (recipe, to_onnx, simplify, quantize, fp16, verify, card, check); `pipeline.run_export`
runs them in order into a temporary folder that is renamed into place only when everything succeeded.
Heavy imports (torch, onnx, onnxruntime.quantization) stay inside the functions.
"""
