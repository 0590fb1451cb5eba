"""The README's results table: shipped GIMSANet weights and BM3D scored by the project on CBSD68 / BSD68
at σ 15/25/50 (the same seeded noisy images for every method), beside published numbers.

    python scripts/cpu_recipe/results_table.py --weights gimsanet_arch/weights/X.safetensors ... \\
        [--bm3d [CBSD68] [BSD68]] [--readme README.md]

Protocol (docs/evaluation.md#standard-awgn-protocol): noise seeded with 0 per image, added to the
RGB (or gray) float image, not clipped; outputs clamped and rounded to uint8; BasicSR's PSNR/SSIM on
all channels, no border crop; networks in fp32. Scores are cached in ``--scores`` (a method already
there with the same file checksum is not scored again; a changed file is scored anew). The set of a
network follows its input channels (3: CBSD68, 1: BSD68);
BM3D (``pip install bm3d``) is told the true σ; colour images use its CBM3D mode. CPU-hours of a
network come from its JSON record. With ``--readme`` the table replaces the lines between
``<!-- results:begin -->`` and ``<!-- results:end -->``.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SETS = {3: ('CBSD68', 'datasets/CBSD68/test.lmdb'), 1: ('BSD68', 'datasets/BSD68/test.lmdb')}
SIGMAS = (15, 25, 50)
# Published PSNR (dB), blind models where the paper has them: (set, method) -> (σ15, σ25, σ50, source)
PUBLISHED = {
    ('CBSD68', 'CBM3D'): (33.52, 30.71, 27.38, 'Dabov et al., ICIP 2007, as reported by Zhang et al., TIP 2017'),
    ('CBSD68', 'CDnCNN-B'): (33.89, 31.23, 27.92, 'Zhang et al., TIP 2017'),
    ('CBSD68', 'FFDNet'): (33.87, 31.21, 27.96, 'Zhang et al., TIP 2018'),
    ('CBSD68', 'Restormer (blind)'): (34.39, 31.78, 28.59, 'Zamir et al., CVPR 2022'),
    ('BSD68', 'BM3D'): (31.07, 28.57, 25.62, 'Dabov et al., TIP 2007, as reported by Zhang et al., TIP 2017'),
    ('BSD68', 'DnCNN-B'): (31.61, 29.16, 26.23, 'Zhang et al., TIP 2017'),
    ('BSD68', 'FFDNet'): (31.63, 29.19, 26.29, 'Zhang et al., TIP 2018'),
    ('BSD68', 'Restormer (blind)'): (31.95, 29.51, 26.62, 'Zamir et al., CVPR 2022'),
}
FIELDS = ['method', 'data', 'sigma', 'psnr', 'ssim', 'cpu_h', 'images', 'sha256']  # sha256: of a network's file


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', nargs='*', default=[], help='network checkpoints (.safetensors/.pth) to score')
    p.add_argument('--bm3d', nargs='*', choices=[name for name, _ in SETS.values()], default=None,
                   help='score BM3D too, on these sets (none named: both); slow, about 14 CPU-s per CBSD68 image '
                        'and sigma for CBM3D')
    p.add_argument('--scores', default='docs/results/scores.csv')
    p.add_argument('--out', default='docs/results/table.md')
    p.add_argument('--readme', help='also put the table into this file between the results markers')
    p.add_argument('--threads', type=int, default=None)
    return p.parse_args(argv)


def read_scores(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def write_scores(path, rows):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def cpu_hours(weights):
    record = osp.splitext(weights)[0] + '.json'
    if osp.isfile(record):
        with open(record) as f:
            return json.load(f).get('cpu_hours', '')
    return ''


def bm3d_denoiser():
    try:
        import bm3d
    except ImportError:
        raise SystemExit('error: --bm3d needs the bm3d package: pip install bm3d') from None

    def run(noisy, sigma):
        import numpy as np
        if noisy.shape[2] == 3:
            return bm3d.bm3d_rgb(noisy, sigma / 255.).astype(np.float32)
        return bm3d.bm3d(noisy[:, :, 0], sigma / 255.)[:, :, None].astype(np.float32)
    return run


def table(rows):
    lines = ['| Method | Data | CPU-hours | σ 15 PSNR / SSIM | σ 25 PSNR / SSIM | σ 50 PSNR / SSIM |',
             '|---|---|---|---|---|---|']
    by = {}
    for r in rows:
        by.setdefault((r['data'], r['method'], r['cpu_h']), {})[int(float(r['sigma']))] = (float(r['psnr']),
                                                                                             float(r['ssim']))
    for data in ('CBSD68', 'BSD68'):
        for (d, method, hours), scores in sorted(by.items()):
            if d == data:
                cells = [f'{scores[s][0]:.2f} / {scores[s][1]:.4f}' if s in scores else '' for s in SIGMAS]
                lines.append(f'| {method} (this project) | {data} | {hours} | ' + ' | '.join(cells) + ' |')
        for (d, method), (*psnr, source) in PUBLISHED.items():
            if d == data:
                lines.append(f'| {method}, published ({source}) | {data} | | ' + ' | '.join(f'{p:.2f}' for p in psnr)
                             + ' |')
    return '\n'.join(lines)


class Scorer:
    """Scores methods on CBSD68/BSD68 at σ 15/25/50 into the cached rows of ``--scores``: a method
    already there for that set (a network: with the same file checksum) is not scored again."""

    def __init__(self, scores_path, threads=None):
        import torch
        import gimsanet_arch  # noqa: F401  (registries)
        from gimsanet_arch.inference import engine
        if threads:
            torch.set_num_threads(threads)
        self.path = scores_path
        self.rows = read_scores(scores_path)
        self.fp32 = engine.resolve_dtype('fp32', torch.device('cpu'))
        self._images = {}

    def images(self, in_ch):
        if in_ch not in self._images:
            sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
            from score_runs import read_lmdb_images
            self._images[in_ch] = read_lmdb_images(SETS[in_ch][1], in_ch)
        return self._images[in_ch]

    def rows_of(self, method, data):
        return [r for r in self.rows if r['method'] == method and r['data'] == data]

    def _add(self, method, data, scored, cpu_h, sha=''):
        self.rows = [r for r in self.rows if not (r['method'] == method and r['data'] == data)]
        self.rows += [dict(method=method, data=data, sigma=r['sigma'], psnr=f'{r["psnr"]:.4f}',
                           ssim=f'{r["ssim"]:.4f}', cpu_h=cpu_h, images=r['images'], sha256=sha) for r in scored]
        write_scores(self.path, self.rows)

    def network(self, weights, method=None, cpu_h=None):
        """Rows of a checkpoint on the test set of its channel count (3: CBSD68, 1: BSD68). The method
        is the file's stem unless given, its CPU-hours those of its JSON record unless given. Cached
        rows of the same method from another file (weights shipped again under the same name) are
        replaced, never reused."""
        from gimsanet_arch.inference import engine, evaluate, network, shipped_weights
        spec = network.spec_from_weights(weights)
        data = SETS[spec.in_ch][0]
        method = method or osp.splitext(osp.basename(weights))[0]
        sha = shipped_weights.sha256(weights)
        cached = self.rows_of(method, data)
        if not cached or any(r.get('sha256') != sha for r in cached):
            net, multiple = network.build(spec)
            scored, _ = evaluate.score_sets({method: (engine.prepare_network(net), multiple)},
                                            {data: self.images(spec.in_ch)}, SIGMAS, dtype=self.fp32)
            self._add(method, data, scored, cpu_hours(weights) if cpu_h is None else cpu_h, sha)
        return self.rows_of(method, data)

    def bm3d(self, data):
        from gimsanet_arch.inference import evaluate
        in_ch = next(c for c, (name, _) in SETS.items() if name == data)
        if not self.rows_of('BM3D', data) and osp.isdir(SETS[in_ch][1]):
            scored, _ = evaluate.score_sets({'BM3D': bm3d_denoiser()}, {data: self.images(in_ch)}, SIGMAS)
            self._add('BM3D', data, scored, '')
        return self.rows_of('BM3D', data)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    scorer = Scorer(args.scores, args.threads)
    for weights in args.weights:
        scorer.network(weights)
    if args.bm3d is not None:
        for data in args.bm3d or [name for name, _ in SETS.values()]:
            scorer.bm3d(data)
    rows = scorer.rows
    text = table(rows)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text + '\n')
    if args.readme:
        with open(args.readme) as f:
            readme = f.read()
        begin, end = '<!-- results:begin -->', '<!-- results:end -->'
        if begin not in readme or end not in readme:
            raise SystemExit(f'error: {args.readme} has no {begin} ... {end} markers')
        head, rest = readme.split(begin, 1)
        with open(args.readme, 'w') as f:
            f.write(head + begin + '\n' + text + '\n' + end + rest.split(end, 1)[1])
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
