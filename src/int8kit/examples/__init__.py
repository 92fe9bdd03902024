"""Real data and real models for int8kit: Fashion-MNIST, small trained classifiers, EfficientNet-Lite0."""
