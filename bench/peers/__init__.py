"""Peer adapters (Celery, Dramatiq, arq, RQ, Procrastinate, DBOS), run in their own venv.

Every `*_bench.py` module runs as `python -m bench.peers.<name>` inside `.bench/peers-venv` and
prints one JSON `bench.model.Result` per line; `bench/peers_runner.py` builds that venv and
starts them. Nothing here is imported by the project's own venv except this docstring.
"""
