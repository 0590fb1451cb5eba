"""Result tables and pictures of the comparison/benchmark commands: Markdown tables, CSV, charts
(matplotlib, the ``plots`` extra: a PSNR bar chart and x/y line or scatter charts) and a grid of
crops (OpenCV)."""
import csv
import os
import os.path as osp

import cv2
import numpy as np

COLUMNS = [('model', 'Model', '{}'), ('data', 'Data', '{}'), ('sigma', 'Sigma', '{:g}'), ('psnr', 'PSNR', '{:.2f}'),
           ('ssim', 'SSIM', '{:.4f}'), ('params', 'Params', '{:,}'), ('macs_per_pixel', 'MACs/px', '{:,.0f}'),
           ('ms_per_mp', 'CPU ms/MP', '{:,.1f}')]


def _cell(value, fmt):
    return '-' if value is None or value == '' else fmt.format(value)


def format_table(rows, columns=COLUMNS):
    """A Markdown table (also readable as plain text); a missing value (None or '') shows as '-'."""
    header = [c[1] for c in columns]
    body = [[_cell(r.get(key), fmt) for key, _, fmt in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells):
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

    sep = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    return '\n'.join([line(header), sep] + [line(b) for b in body])


def write_csv(rows, path, keys):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in keys})
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def write_psnr_chart(rows, path):
    """Grouped bars: PSNR per (data, sigma), one bar per model. Returns the path, or None (with
    nothing written) when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return None
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    groups = list(dict.fromkeys((r['data'], r['sigma']) for r in rows))
    models = list(dict.fromkeys(r['model'] for r in rows))
    value = {(r['model'], r['data'], r['sigma']): r['psnr'] for r in rows}
    fig, ax = plt.subplots(figsize=(max(6, 0.72 * len(groups) * max(1, len(models))), 4))
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [value.get((model, d, s), 0) for d, s in groups], width, label=model)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    ax.set_xticklabels([f'{d}\nsigma {s:g}' for d, s in groups])
    ax.set_ylabel('PSNR (dB)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_xy_chart(series, path, xlabel, ylabel, log_x=False, log_y=False, lines=True, title=None):
    """One line (or, with ``lines=False``, labelled points) per series. ``series``: a list of dicts
    with ``label``, ``points`` [(x, y) or (x, y, text)], optional ``group`` (series of one group
    share a colour) and ``dashed``. Returns the path, or None (nothing written) without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    groups = list(dict.fromkeys(s.get('group', s['label']) for s in series))
    colours = plt.get_cmap('tab10')
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for s in series:
        points = sorted(p for p in s['points'] if p[1] is not None)
        if not points:
            continue
        colour = colours(groups.index(s.get('group', s['label'])) % 10)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, '--' if s.get('dashed') else '-', marker='o', color=colour, label=s['label'],
                linewidth=1.5 if lines else 0)
        for p in points:
            if len(p) > 2 and p[2]:
                ax.annotate(p[2], (p[0], p[1]), textcoords='offset points', xytext=(4, 4), fontsize=7)
    ax.set_xscale('log' if log_x else 'linear')
    ax.set_yscale('log' if log_y else 'linear')
    xs = sorted({p[0] for s in series for p in s['points']})
    if lines and len(xs) <= 10:  # few x values (image sizes, sigmas): label exactly those
        ax.set_xticks(xs)
        ax.set_xticklabels([f'{x:g}' for x in xs])
        ax.tick_params(axis='x', which='minor', bottom=False, labelbottom=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_grid(crops, models, path, tile=160):
    """Rows: sigmas; columns: clean, noisy, each model. Captions carry the whole-image PSNR."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    cap_h = 22
    cols = ['clean', 'noisy'] + list(models)
    rows_img = []
    font = cv2.FONT_HERSHEY_SIMPLEX
    for sigma in sorted(crops):
        entry = crops[sigma]
        tiles = []
        for col in cols:
            img = entry[col]
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)[:, :, ::-1]  # RGB -> BGR
            cap = np.full((cap_h, tile, 3), 255, np.uint8)
            text = f'clean (sigma {sigma:g})' if col == 'clean' else f'{col}: {entry["psnr"][col]:.2f} dB'
            scale = min(0.4, 0.4 * tile / max(1, 7.5 * len(text)))
            cv2.putText(cap, text, (3, 15), font, max(scale, 0.25), (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(np.concatenate([cap, img], axis=0))
            tiles.append(np.full((tile + cap_h, 4, 3), 255, np.uint8))
        rows_img.append(np.concatenate(tiles[:-1], axis=1))
        rows_img.append(np.full((4, rows_img[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows_img[:-1], axis=0)
    cv2.imwrite(path, grid)
    return grid.shape
