"""Development tools (fuzzer, sanitizer, GPU check, random models, README tables, lint)."""
