"""Helpers shared by tests, benchmarks and tools: tiny exact GGUF models, their NumPy forward pass,
the LED reference port, the architecture models and the GGUF writer/fuzzer.

Import as ``tests.support.<module>`` with the repository root on ``sys.path`` (pytest does this
through ``pythonpath`` in pyproject.toml; scripts in benchmarks/ and tools/ insert it themselves)."""
