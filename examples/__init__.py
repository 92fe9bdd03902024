"""Examples beside the library, run from the repository root (`python -m examples.train`, tests, bench):
Fashion-MNIST and its small trained classifiers, EfficientNet-Lite0's export, the architecture zoo."""
