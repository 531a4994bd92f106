"""Benchmarks, each run on its own: ``python bench/NAME.py``.

A package so that tests can reuse the load setup of ``bench/service.py``.
"""
