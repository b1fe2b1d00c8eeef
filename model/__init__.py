"""The model lifecycle: schema, features, training, ONNX packaging, registry, serving (issue 3)."""
