"""Latency simulation from the ONNX graph (cost model + device roofline) and real ONNX Runtime profiling.

Public API: `simulate` (predict.py), `profile_model` (profile.py), `load_device` / `list_devices` (device.py).
Uses onnx and numpy only (onnxruntime for profiling, matplotlib inside plot functions).
"""
