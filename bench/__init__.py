"""Benchmarks: coco-operator's sync against LangChain and LlamaIndex on the Confluence emulator, and operator scale.

Run ``python -m bench.run --help`` (or ``make bench``); results go to ``docs/benchmarks.md`` and ``docs/bench-*.png``.
"""
