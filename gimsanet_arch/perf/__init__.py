"""The performance report (``gimsanet-benchmark --perf``): every number measured in one
run, next to the hardware's own rates, with the targets computed from them.

- :mod:`~gimsanet_arch.perf.results`: measurement rows, the targets and their pass/fail check;
- :mod:`~gimsanet_arch.perf.roofline`: multiply-adds per second of a large matmul and of GIMSANet's 3x3 conv;
- :mod:`~gimsanet_arch.perf.photos`: skimage photos, noise and the PSNR change of a variant;
- :mod:`~gimsanet_arch.perf.inference_paths`: GIMSANet's inference variants, timed and scored;
- :mod:`~gimsanet_arch.perf.op_profile`: GIMSANet's forward time by kind of op, and the gap to the conv rate;
- :mod:`~gimsanet_arch.perf.training_step`: a DenoiseModel iteration vs a bare loop, bf16 vs fp32 training;
- :mod:`~gimsanet_arch.perf.data_rate`: LMDB data loading vs the model's consumption;
- :mod:`~gimsanet_arch.perf.official`: Restormer and NAFNet next to their official code, run in this process.

It sits above ``models`` (the training section builds a DenoiseModel) and below ``commands``.
"""
