"""Benchmarks of kiiex_async: ``python -m bench --help``.  Not part of the installed package."""
