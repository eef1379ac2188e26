"""Evaluation: the sweep (every quality claim), the benchmarks (every speed and memory claim) and the
timing helpers they share; all drive the in-process Chain (tools/chain.py) or the real services."""
