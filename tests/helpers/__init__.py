"""Helpers the tests share: reference networks, fixtures too large for conftest, worker scripts.

Imported as ``tests.helpers.NAME`` (pytest puts the repository root on the path:
``pythonpath`` in pyproject.toml); ``ddp_worker.py`` is a script that torchrun launches by path.
"""
