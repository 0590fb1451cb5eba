"""Result tables and pictures of the comparison/benchmark commands: Markdown table, CSV, a PSNR
chart (matplotlib, the ``plots`` extra) and a grid of crops (OpenCV)."""
import csv
import os
import os.path as osp

import cv2
import numpy as np

COLUMNS = [('model', 'Model', '{}'), ('data', 'Data', '{}'), ('sigma', 'Sigma', '{:g}'), ('psnr', 'PSNR', '{:.2f}'),
           ('ssim', 'SSIM', '{:.4f}'), ('params', 'Params', '{:,}'), ('macs_per_pixel', 'MACs/px', '{:,.0f}'),
           ('ms_per_mp', 'CPU ms/MP', '{:,.1f}')]


def format_table(rows, columns=COLUMNS):
    """A Markdown table (also readable as plain text)."""
    header = [c[1] for c in columns]
    body = [[fmt.format(r[key]) for key, _, fmt in columns] for r in rows]
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
