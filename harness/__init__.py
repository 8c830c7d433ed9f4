"""Plain-Python core of the Datadog OAuth conformance harness (no pytest imports)."""
__version__ = "0.1.0"
