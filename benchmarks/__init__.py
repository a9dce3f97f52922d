"""skrec's benchmark commands; see the README. Each module runs with ``python -m benchmarks.<name>``."""
