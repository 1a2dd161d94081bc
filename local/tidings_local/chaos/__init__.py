"""The chaos matrix (``tidings chaos``, ``make chaos``): every provider times every fault on the local
system, each notification judged by what the sandboxes saw (``checks``), reported in docs/reliability.md.
"""
