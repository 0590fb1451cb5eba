"""Compare denoisers on the same images and noise: quality, size, cost, speed, and a picture.

Used by ``scripts/compare.py``. For every model, test set and sigma:

* noise as in docs/evaluation.md (standard protocol): numpy generator reset to seed 0 for every
  image, ``normal(0, sigma/255)`` added to the RGB (or gray) float image, not clipped
  (:func:`gimsanet_arch.data.gaussian_noise_dataset.add_test_noise`);
* output reflect-padded to the model's multiple and cropped back, clamped to [0, 1], rounded to
  uint8; PSNR and SSIM with BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (crop_border 0, not
  Y-only), averaged over images;
* trainable parameters; multiply-accumulates per pixel from ``torch.utils.flop_counter`` (a MAC is
  half a FLOP) on a ``mac_size`` square input; CPU milliseconds per megapixel (median of timed
  runs after a warm-up, batch 1, fp32, on a ``time_size`` square input).

Outputs: a text table, a CSV, a bar chart PNG (matplotlib when installed, else drawn with OpenCV)
and a PNG grid of the same crop for every sigma: clean, noisy and each model's output, with PSNR in
the captions.
"""
import csv
import os
import os.path as osp
import statistics
import time
from copy import deepcopy

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from gimsanet_arch.archs.arch_info import in_channels, pad_multiple as arch_pad_multiple
from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise


class ModelSpec:
    """A network to compare: ``name``, the ``network_g`` options, an optional checkpoint."""

    def __init__(self, name, network_opt, checkpoint=None, param_key='params', strict=True, pad_multiple=None):
        self.name = name
        self.network_opt = dict(network_opt)
        self.checkpoint = checkpoint or None
        self.param_key = param_key
        self.strict = strict
        self.pad_multiple = pad_multiple

    @property
    def in_ch(self):
        return in_channels(self.network_opt)


def _load_yaml(path):
    from basicsr.utils.options import ordered_yaml
    with open(path) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    if not isinstance(opt, dict):
        raise ValueError(f'{path}: not a mapping of options')
    return opt


def spec_from_option_file(path, name=None):
    """A :class:`ModelSpec` from a BasicSR option file (``network_g``, ``path.pretrain_network_g``,
    ``path.param_key_g`` / ``param_key``, ``val.window_size`` / ``pad_multiple``)."""
    opt = _load_yaml(path)
    if 'network_g' not in opt:
        raise ValueError(f'{path}: no network_g section')
    p = opt.get('path') or {}
    val = opt.get('val') or {}
    return ModelSpec(name or opt.get('name') or osp.splitext(osp.basename(path))[0], opt['network_g'],
                     p.get('pretrain_network_g'), p.get('param_key_g', p.get('param_key', 'params')),
                     p.get('strict_load_g', True), val.get('pad_multiple', val.get('window_size')))


def spec_from_model_arg(text):
    """``NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]``: the yml holds ``network_g`` (or is the network dict
    itself); no checkpoint means random initial weights."""
    if '=' not in text:
        raise ValueError(f'--model {text!r}: expected NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]')
    name, rest = text.split('=', 1)
    yml, _, ckpt = rest.partition(':')
    opt = _load_yaml(yml)
    if 'network_g' in opt:
        spec = spec_from_option_file(yml, name)
        spec.checkpoint = ckpt or None
        return spec
    if 'type' not in opt:
        raise ValueError(f'{yml}: needs network_g (or a network dict with type)')
    return ModelSpec(name, opt, ckpt or None)


def build_model(spec, device='cpu'):
    """Build (and load) the network of ``spec``; returns it in eval mode on ``device``."""
    from basicsr.archs import build_network
    net = build_network(deepcopy(spec.network_opt))
    if spec.checkpoint:
        from gimsanet_arch.utils.checkpoint import load_network_checked
        load_network_checked(net, spec.checkpoint, strict=spec.strict, param_key=spec.param_key)
    return net.to(device).eval()


def pad_multiple(net, spec):
    if spec.pad_multiple:
        return int(spec.pad_multiple)
    return arch_pad_multiple(net)


def run_net(net, img, multiple=1, device='cpu'):
    """``img``: HxWxC float32 [0,1] (RGB or gray) -> network output, same layout, float32."""
    from gimsanet_arch.models.denoise_model import pad_to_multiple
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float().to(device)
    h, w = x.shape[-2:]
    with torch.no_grad():
        y = net(pad_to_multiple(x, multiple) if multiple > 1 else x)
    if isinstance(y, (list, tuple)):
        y = y[-1]
    return y[0, :, :h, :w].float().cpu().numpy().transpose(1, 2, 0)


def to_uint8(img):
    return (np.clip(img, 0, 1) * 255.).round().astype(np.uint8)


def count_params(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def macs_per_pixel(net, in_ch, size=64, multiple=1, device='cpu'):
    from torch.utils.flop_counter import FlopCounterMode
    size = int(np.ceil(size / multiple) * multiple)
    x = torch.rand(1, in_ch, size, size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / 2. / (size * size)


def ms_per_megapixel(net, in_ch, size=256, runs=3, multiple=1, device='cpu'):
    size = int(np.ceil(size / multiple) * multiple)
    x = torch.rand(1, in_ch, size, size, device=device)
    times = []
    with torch.no_grad():
        net(x)  # warm-up
        for _ in range(max(1, runs)):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000. / (size * size / 1e6)


def list_images(folder):
    exts = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(exts))
    if not files:
        raise ValueError(f'{folder}: no images')
    return [osp.join(folder, f) for f in files]


def read_clean(path, in_ch):
    """uint8 file -> float32 HxWxC in [0,1]: RGB for in_ch 3, cv2 IMREAD_GRAYSCALE for in_ch 1."""
    if in_ch == 1:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f'cannot read {path}')
        return (img.astype(np.float32) / 255.)[:, :, None]
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot read {path}')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.


def _metric_hwc(img):
    """uint8 RGB/gray HxWxC -> what BasicSR's metrics take (BGR order, HWC)."""
    return img[:, :, ::-1] if img.shape[2] == 3 else img


def psnr_ssim(out_u8, gt_u8):
    from basicsr.metrics import calculate_psnr, calculate_ssim
    a, b = _metric_hwc(out_u8), _metric_hwc(gt_u8)
    return (float(calculate_psnr(a, b, crop_border=0, test_y_channel=False)),
            float(calculate_ssim(a, b, crop_border=0, test_y_channel=False)))


def compare(specs, data_folders, sigmas, device='cpu', mac_size=64, time_size=256, time_runs=3, threads=None,
            keep_crops=None, progress=True):
    """Run every model on every image of every folder at every sigma.

    Returns ``(rows, crops)``: ``rows`` a list of dicts (model, data, sigma, psnr, ssim, params,
    macs_per_pixel, ms_per_mp, images); ``crops`` (when ``keep_crops = (folder, image_index, box)``)
    maps sigma -> {'clean', 'noisy', model name: uint8 crop, plus 'psnr': {name: value}}.
    """
    if threads:
        torch.set_num_threads(int(threads))
    in_chs = {s.in_ch for s in specs}
    if len(in_chs) != 1:
        raise ValueError(f'models take different channel counts {sorted(in_chs)}; compare gray and colour separately')
    in_ch = in_chs.pop()
    nets, cost = {}, {}
    for spec in specs:
        net = build_model(spec, device)
        mult = pad_multiple(net, spec)
        nets[spec.name] = (net, mult)
        cost[spec.name] = dict(params=count_params(net),
                               macs_per_pixel=macs_per_pixel(net, in_ch, mac_size, mult, device),
                               ms_per_mp=ms_per_megapixel(net, in_ch, time_size, time_runs, mult, device))
    rows, crops = [], {}
    for folder in data_folders:
        paths = list_images(folder)
        data_name = osp.basename(osp.normpath(folder))
        sums = {(s.name, sg): [0., 0.] for s in specs for sg in sigmas}
        total = len(paths) * len(sigmas) * len(specs)
        bar = tqdm(total=total, desc=f'compare {data_name}', unit='run', disable=not progress)
        for idx, path in enumerate(paths):
            clean = read_clean(path, in_ch)
            clean_u8 = to_uint8(clean)
            for sigma in sigmas:
                noisy = add_test_noise(clean, sigma, seed=0, channel_order='rgb')
                keep = keep_crops is not None and keep_crops[0] == folder and keep_crops[1] == idx
                if keep:
                    box = keep_crops[2]
                    entry = crops.setdefault(sigma, {'psnr': {}})
                    entry['clean'] = _crop(clean_u8, box)
                    entry['noisy'] = _crop(to_uint8(noisy), box)
                    entry['psnr']['noisy'] = psnr_ssim(to_uint8(noisy), clean_u8)[0]
                for spec in specs:
                    net, mult = nets[spec.name]
                    out_u8 = to_uint8(run_net(net, noisy, mult, device))
                    p, s = psnr_ssim(out_u8, clean_u8)
                    sums[(spec.name, sigma)][0] += p
                    sums[(spec.name, sigma)][1] += s
                    if keep:
                        entry[spec.name] = _crop(out_u8, box)
                        entry['psnr'][spec.name] = p
                    bar.update(1)
        bar.close()
        for spec in specs:
            for sigma in sigmas:
                p, s = sums[(spec.name, sigma)]
                rows.append(dict(model=spec.name, data=data_name, sigma=sigma, psnr=p / len(paths),
                                 ssim=s / len(paths), images=len(paths), **cost[spec.name]))
    return rows, crops


def _crop(img, box):
    top, left, size = box
    return img[top:top + size, left:left + size]


def center_box(folder, index, size, in_ch):
    img = read_clean(list_images(folder)[index], in_ch)
    h, w = img.shape[:2]
    size = min(size, h, w)
    return ((h - size) // 2, (w - size) // 2, size)


# ----------------------------------------------------------------------------- outputs
COLUMNS = [('model', 'Model', '{}'), ('data', 'Data', '{}'), ('sigma', 'Sigma', '{:g}'), ('psnr', 'PSNR', '{:.2f}'),
           ('ssim', 'SSIM', '{:.4f}'), ('params', 'Params', '{:,}'), ('macs_per_pixel', 'MACs/px', '{:,.0f}'),
           ('ms_per_mp', 'CPU ms/MP', '{:,.1f}')]


def format_table(rows):
    """A Markdown table (also readable as plain text)."""
    header = [c[1] for c in COLUMNS]
    body = [[fmt.format(r[key]) for key, _, fmt in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'  # noqa: E731
    sep = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    return '\n'.join([line(header), sep] + [line(b) for b in body])


def write_csv(rows, path):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    keys = [c[0] for c in COLUMNS] + ['images']
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in keys})
    return path


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]  # RGB


def write_chart(rows, path, use_matplotlib=None):
    """Grouped bars: PSNR per (data, sigma), one bar per model. Returns the backend used."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    groups = []
    for r in rows:
        if (r['data'], r['sigma']) not in groups:
            groups.append((r['data'], r['sigma']))
    models = list(dict.fromkeys(r['model'] for r in rows))
    value = {(r['model'], r['data'], r['sigma']): r['psnr'] for r in rows}
    if use_matplotlib is None:
        try:
            import matplotlib  # noqa: F401
            use_matplotlib = True
        except ImportError:
            use_matplotlib = False
    if use_matplotlib:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(models)) * 0.6), 4))
        width = 0.8 / max(1, len(models))
        for i, m in enumerate(models):
            xs = [g + i * width for g in range(len(groups))]
            ax.bar(xs, [value.get((m, d, s), 0) for d, s in groups], width, label=m,
                   color=[c / 255 for c in PALETTE[i % len(PALETTE)]])
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
        ax.set_xticklabels([f'{d}\nsigma {s:g}' for d, s in groups])
        ax.set_ylabel('PSNR (dB)')
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return 'matplotlib'
    _draw_chart_cv2(groups, models, value, path)
    return 'opencv'


def _draw_chart_cv2(groups, models, value, path):
    bar_w, gap, left, bottom, top, height = 28, 30, 60, 60, 40, 300
    group_w = bar_w * len(models) + gap
    legend_w = 20 + max((len(m) for m in models), default=0) * 9 + 40
    width = left + group_w * len(groups) + legend_w
    img = np.full((top + height + bottom, width, 3), 255, np.uint8)
    vals = [v for v in value.values() if np.isfinite(v)]
    vmax = max(vals) if vals else 1
    vmin = max(0., min(vals) - 3) if vals else 0
    vmax = vmax + 1
    font = cv2.FONT_HERSHEY_SIMPLEX
    y0 = top + height
    cv2.line(img, (left, top), (left, y0), (0, 0, 0), 1)
    cv2.line(img, (left, y0), (left + group_w * len(groups), y0), (0, 0, 0), 1)
    for t in np.linspace(vmin, vmax, 5):
        y = int(y0 - (t - vmin) / (vmax - vmin) * height)
        cv2.line(img, (left - 4, y), (left, y), (0, 0, 0), 1)
        cv2.putText(img, f'{t:.1f}', (4, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, 'PSNR (dB)', (4, top - 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for g, (d, s) in enumerate(groups):
        gx = left + gap // 2 + g * group_w
        for i, m in enumerate(models):
            v = value.get((m, d, s))
            if v is None or not np.isfinite(v):
                continue
            y = int(y0 - (v - vmin) / (vmax - vmin) * height)
            color = PALETTE[i % len(PALETTE)][::-1]
            cv2.rectangle(img, (gx + i * bar_w, y), (gx + (i + 1) * bar_w - 3, y0), color, -1)
            cv2.putText(img, f'{v:.1f}', (gx + i * bar_w - 2, y - 4), font, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, str(d)[:14], (gx, y0 + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f'sigma {s:g}', (gx, y0 + 36), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    lx = left + group_w * len(groups) + 20
    for i, m in enumerate(models):
        y = top + 20 * i
        cv2.rectangle(img, (lx, y), (lx + 12, y + 12), PALETTE[i % len(PALETTE)][::-1], -1)
        cv2.putText(img, m, (lx + 18, y + 11), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, img)


def write_grid(crops, models, path, tile=160):
    """Rows: sigmas; columns: clean, noisy, each model. Captions carry the full-image PSNR."""
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
            if col == 'clean':
                text = f'clean (sigma {sigma:g})'
            else:
                text = f'{col}: {entry["psnr"][col]:.2f} dB'
            scale = min(0.4, 0.4 * tile / max(1, 7.5 * len(text)))
            cv2.putText(cap, text, (3, 15), font, max(scale, 0.25), (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(np.concatenate([cap, img], axis=0))
            tiles.append(np.full((tile + cap_h, 4, 3), 255, np.uint8))
        rows_img.append(np.concatenate(tiles[:-1], axis=1))
        rows_img.append(np.full((4, rows_img[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows_img[:-1], axis=0)
    cv2.imwrite(path, grid)
    return grid.shape
