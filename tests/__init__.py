"""The test suite (a package, so that tests, benchmarks and tools import its helpers as tests.support)."""
