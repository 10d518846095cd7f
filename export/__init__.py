"""drift-export: turn a DriftPolicy checkpoint into a self-contained, parity-gated ONNX bundle."""
