"""Performance studies of the project, kept outside the installed package (as timm keeps its
``benchmark.py`` beside ``timm/``): run them from the repository root, e.g. ``python -m benchmarks.perf``.

The user-facing speed and quality benchmark is ``gimsanet-benchmark`` (``gimsanet_arch.commands.benchmark``);
what is here measures the implementation itself (roofline, inference variants, op profile, training
step, data loading, the official code side by side).
"""
