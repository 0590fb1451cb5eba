"""The performance report (``python -m benchmarks.perf``, from the repository root): every number
measured in one run, next to the hardware's own rates, with the targets computed from them.

- :mod:`~benchmarks.perf.command`: the command line, the sections and the files it writes;
- :mod:`~benchmarks.perf.perf_report`: the report's Markdown tables and its loss curves;
- :mod:`~benchmarks.perf.results`: measurement rows, the targets and their pass/fail check;
- :mod:`~benchmarks.perf.roofline`: multiply-adds per second of a large matmul and of GIMSANet's 3x3 conv;
- :mod:`~benchmarks.perf.photos`: skimage photos, noise and the PSNR change of a variant;
- :mod:`~benchmarks.perf.inference_paths`: GIMSANet's inference variants, timed and scored;
- :mod:`~benchmarks.perf.op_profile`: GIMSANet's forward time by kind of op, and the gap to the conv rate;
- :mod:`~benchmarks.perf.training_step`: a DenoiseModel iteration vs a bare loop, bf16 vs fp32 training;
- :mod:`~benchmarks.perf.data_rate`: LMDB data loading vs the model's consumption;
- :mod:`~benchmarks.perf.official`: Restormer and NAFNet next to their official code, run in this process.

A one-off study, not a user feature: it lives beside the package, not in it, and uses the installed
``gimsanet_arch`` like any other client (the training section builds a DenoiseModel).
"""
