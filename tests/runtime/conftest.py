"""Markers for the runtime tests."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "full_size: a 224x224 zoo model (ResNet-50 / MobileNetV2); part of the default suite"
    )
