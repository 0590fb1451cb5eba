"""The performance report's Markdown (one table per section, the targets first) and its loss curves
(CSV and PNG), from the rows of :mod:`benchmarks.perf.results`."""
import csv
import math
import os.path as osp

from gimsanet_arch.commands import report

# section key -> (heading, what its table says)
SECTION_TEXT = {
    'targets': ('Targets', 'Each ratio is computed from the rows below, measured in this run.'),
    'roofline': ('Roofline', 'The hardware at best: a large matmul and a 3x3 conv at GIMSANet\'s width (49->49), '
                 'on fp32 or bf16 tensors.'),
    'gimsanet': ('GIMSANet inference', 'Batch 1, one random image; GMAC/s from the network\'s multiply-adds '
                 '(FlopCounterMode). Note: the dtype, or for the fastest rows the variant.'),
    'gimsanet quality': ('GIMSANet outputs on photos', 'skimage.data photos (centre crops) with the seeded test '
                         'noise; every variant against the plain NCHW fp32 one.'),
    'profile': ('GIMSANet profile by op', 'Self time of every op of one forward (torch.profiler), by kind; '
                'share of the profiled time.'),
    'profile gap': ('What the gap to the conv rate is made of', 'Ideal: all multiply-adds at the measured 3x3 conv '
                    'rate of the same dtype (roofline). Gap = profiled - ideal; then each part\'s share of the gap: '
                    'the conv time above the ideal, and every other kind of op.'),
    'training': ('Training', 'A DenoiseModel iteration vs a bare PyTorch loop (same network, batch, Adam, '
                 'autocast), timed in turn; then the same seed trained with bf16 autocast off and on.'),
    'data loading': ('Data loading', 'GaussianNoiseDataset on an LMDB (decode, crop, flip/rotate, noise) through '
                     'BasicSR\'s DataLoader, against the model\'s consumption.'),
    'official': ('Restormer and NAFNet vs the official code', 'Same weights, same process, batch 1; x columns: '
                 'speed ratio to the official fp32 / bf16 autocast run.'),
    'official outputs': ('Outputs vs the official code', 'On the noisy photos, against the official fp32 output.'),
}
TARGET_COLUMNS = [('name', 'Target', '{}'), ('value', 'Measured', '{}'), ('target', 'Required', '{}'),
                  ('result', 'Result', '{}'), ('note', 'From', '{}')]


def number(value):
    """A measured value for a table: '-' when absent, a few significant digits otherwise."""
    if value is None or value == '':
        return '-'
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f'{value:,}'
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    size = abs(value)
    if size >= 1000:
        return f'{value:,.0f}'
    if size >= 10:
        return f'{value:.1f}'
    if size >= 0.01 or size == 0:
        return f'{value:.3f}'
    return f'{value:.2e}'


def header(metric, unit):
    return metric if not unit or unit == metric or unit in metric.split() else f'{metric} ({unit})'


def pivot(rows):
    """``(table rows, columns)``: one line per name, one column per metric, the notes last."""
    lines = {}
    metrics = list(dict.fromkeys((r['metric'], r['unit']) for r in rows if r['metric'] != 'error'))
    for r in rows:
        line = lines.setdefault(r['name'], {'name': r['name'], 'notes': []})
        if r['metric'] != 'error':
            line[r['metric']] = number(r['value'])
        if r['note'] and r['note'] not in line['notes']:
            line['notes'].append(r['note'])
    for line in lines.values():
        line['note'] = '; '.join(line.pop('notes'))
    columns = [('name', '', '{}')] + [(m, header(m, u), '{}') for m, u in metrics] + [('note', 'Note', '{}')]
    return list(lines.values()), columns


def section_tables(rows):
    """The Markdown of every section present in ``rows``, the targets first, in :data:`SECTION_TEXT` order."""
    order = list(SECTION_TEXT) + [s for s in dict.fromkeys(r['section'] for r in rows) if s not in SECTION_TEXT]
    parts = []
    for section in order:
        mine = [r for r in rows if r['section'] == section]
        if not mine:
            continue
        title, text = SECTION_TEXT.get(section, (section, ''))
        if section == 'targets':
            table = report.format_table([dict(r, value=number(r['value'])) for r in mine], TARGET_COLUMNS)
        else:
            table = report.format_table(*pivot(mine))
        parts += [f'## {title}\n', text + '\n' if text else '', table + '\n']
    return '\n'.join(p for p in parts if p)


def markdown(label, args, rows):
    weights = args.weights or 'random weights (PSNR changes are output differences instead)'
    head = [f'# Performance report\n\nMachine: {label}.\n',
            f'Command: `python -m benchmarks.perf {" ".join(args.argv)}`. Forwards at {args.size}x{args.size}, '
            f'median of {args.runs} timed run(s) after {args.warmup} warm-up(s); GIMSANet: {weights}.'
            + (' **--quick: tiny widths and sizes, the numbers mean nothing.**' if args.quick else '') + '\n']
    return '\n'.join(head) + '\n' + section_tables(rows)


def write_losses(losses, out):
    """``training_loss.csv`` and, with matplotlib, ``training_loss.png`` of ``{label: [loss, ...]}``."""
    path = osp.join(out, 'training_loss.csv')
    labels = list(losses)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['iteration'] + [f'loss_{label}' for label in labels])
        for index in range(max(len(v) for v in losses.values())):
            writer.writerow([index + 1] + [losses[label][index] if index < len(losses[label]) else ''
                                           for label in labels])
    series = [dict(label=f'{label} autocast' if label == 'bf16' else label, points=list(enumerate(values, 1)))
              for label, values in losses.items()]
    chart = report.write_xy_chart(series, osp.join(out, 'training_loss.png'), 'iteration', 'L1 loss',
                                  title='Training loss, same seed and batches: fp32 vs bf16 autocast')
    return [path] + ([chart] if chart else [])
