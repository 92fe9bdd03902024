"""The architecture zoo: torchvision's classifiers (own copies, random weights) exported to ONNX for tests and
benchmarks. `architectures` holds the definitions, `export` the cached ONNX export and the `MODELS` registry."""
