"""Score models on clean test images with synthetic noise (the standard AWGN protocol of
docs/evaluation.md#standard-awgn-protocol): numpy generator reset to seed 0 for every image,
``normal(0, sigma/255)`` added to the RGB (or gray) float image, not clipped; the network output
(through :func:`gimsanet_arch.inference.engine.run`) clamped and rounded to uint8; PSNR and SSIM with
BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (crop 0, not Y-only), averaged over images.
``dtype`` is the engine's (``auto``: bf16 where the device computes it natively; ``fp32`` forces
float32).
"""
import os.path as osp

import cv2
import numpy as np
import torch
from tqdm import tqdm

from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
from gimsanet_arch.inference import cost, engine, network
from gimsanet_prep.images import list_images, read_image, to_float


def read_clean(path, in_ch):
    """An image file as float32 HxWxC in [0, 1]: RGB for ``in_ch`` 3, OpenCV's gray conversion
    (IMREAD_GRAYSCALE) for ``in_ch`` 1."""
    img = to_float(read_image(path, mode='gray' if in_ch == 1 else 'color'))
    return img if in_ch == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_uint8(img):
    return (np.clip(img, 0, 1) * 255.).round().astype(np.uint8)


def denoise_hwc(net, img, multiple=1, device='cpu', **run_options):
    """HxWxC float32 [0, 1] (RGB or gray) -> the network's output in the same layout (float32)."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float()
    y = engine.run(net, x, multiple, device=device, **run_options)
    return y[0].numpy().transpose(1, 2, 0)


def psnr_ssim(out_u8, gt_u8):
    """BasicSR's PSNR and SSIM of two uint8 HxWxC images given in RGB (or gray) order."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    bgr = (lambda img: img[:, :, ::-1]) if out_u8.shape[2] == 3 else (lambda img: img)
    a, b = bgr(out_u8), bgr(gt_u8)
    return (float(calculate_psnr(a, b, crop_border=0, test_y_channel=False)),
            float(calculate_ssim(a, b, crop_border=0, test_y_channel=False)))


def crop_box(img, size):
    """``(top, left, size)`` of a centred square crop of ``img``."""
    h, w = img.shape[:2]
    size = min(size, h, w)
    return ((h - size) // 2, (w - size) // 2, size)


def _crop(img, box):
    top, left, size = box
    return img[top:top + size, left:left + size]


def model_costs(net, in_ch, multiple, device, mac_size=64, time_size=256, time_runs=3, dtype=None):
    return dict(params=cost.count_params(net),
                macs_per_pixel=cost.macs_per_pixel(net, in_ch, mac_size, multiple, device),
                ms_per_mp=cost.ms_per_megapixel(net, in_ch, time_size, time_runs, multiple, device, dtype))


def load_models(specs, device='cpu'):
    """``{name: (net, multiple)}`` for every spec, built and loaded once and prepared for the
    engine's fast path (:func:`~gimsanet_arch.inference.engine.prepare_network`)."""
    models = {}
    for spec in specs:
        net, multiple = network.build(spec, device)
        models[spec.name] = (engine.prepare_network(net), multiple)
    return models


def common_in_channels(specs):
    """The input channel count all ``specs`` share (scores compare models on the same images)."""
    in_chs = {s.in_ch for s in specs}
    if len(in_chs) != 1:
        raise ValueError(f'models take different channel counts {sorted(in_chs)}; compare gray and colour separately')
    return in_chs.pop()


def load_folders(data_folders, in_ch):
    """``{folder name: [(image path, clean float image)]}`` for every image of every folder."""
    sets = {}
    for folder in data_folders:
        paths = list_images(folder, recursive=False)
        if not paths:
            raise ValueError(f'no images in {folder}')
        sets[osp.basename(osp.normpath(folder))] = [(path, read_clean(path, in_ch)) for path in paths]
    return sets


def _denoiser(model, run_options):
    """``fn(noisy HxWxC float, sigma) -> denoised`` for a ``(net, multiple)`` pair or a callable
    taking ``(noisy, sigma)`` (a classical method such as BM3D)."""
    if callable(model):
        return model
    net, multiple = model
    return lambda noisy, sigma: denoise_hwc(net, noisy, multiple, **run_options)


def score_sets(models, sets, sigmas, keep_crop=None, progress=True, **run_options):
    """PSNR/SSIM of every model on every image of every set at every sigma, averaged per (model,
    set, sigma). ``models``: ``{name: (net, multiple)}`` or ``{name: fn(noisy, sigma)}``; ``sets``:
    ``{set name: [(image name, clean float HxWxC, RGB or gray)]}``; ``run_options`` go to
    :func:`gimsanet_arch.inference.engine.run` (device, dtype, tile, ...).

    Returns ``(rows, crops)``: ``rows`` a list of dicts (model, data, sigma, psnr, ssim, images);
    ``crops`` (when ``keep_crop = (set name, image_index, size)``) maps sigma -> {'clean', 'noisy',
    model name: uint8 crop, plus 'psnr': {name: value}}.
    """
    rows, crops = [], {}
    denoisers = {name: _denoiser(model, run_options) for name, model in models.items()}
    for data_name, images in sets.items():
        sums = {(name, sigma): [0., 0.] for name in models for sigma in sigmas}
        bar = tqdm(total=len(images) * len(sigmas) * len(models), desc=f'score {data_name}', unit='run',
                   disable=not progress)
        for index, (_, clean) in enumerate(images):
            clean_u8 = to_uint8(clean)
            keep = keep_crop is not None and keep_crop[0] == data_name and keep_crop[1] == index
            box = crop_box(clean, keep_crop[2]) if keep else None
            for sigma in sigmas:
                noisy = add_test_noise(clean, sigma, seed=0, channel_order='rgb')
                if keep:
                    entry = crops.setdefault(sigma, {'psnr': {}})
                    entry['clean'], entry['noisy'] = _crop(clean_u8, box), _crop(to_uint8(noisy), box)
                    entry['psnr']['noisy'] = psnr_ssim(to_uint8(noisy), clean_u8)[0]
                for name, denoise in denoisers.items():
                    out_u8 = to_uint8(denoise(noisy, sigma))
                    p, s = psnr_ssim(out_u8, clean_u8)
                    sums[(name, sigma)][0] += p
                    sums[(name, sigma)][1] += s
                    if keep:
                        entry[name] = _crop(out_u8, box)
                        entry['psnr'][name] = p
                    bar.update(1)
        bar.close()
        for name in models:
            for sigma in sigmas:
                p, s = sums[(name, sigma)]
                rows.append(dict(model=name, data=data_name, sigma=sigma, psnr=p / len(images),
                                 ssim=s / len(images), images=len(images)))
    return rows, crops


def score(models, in_ch, data_folders, sigmas, device='cpu', keep_crop=None, progress=True, dtype=None):
    """:func:`score_sets` on folders of clean images (``keep_crop`` names its folder by path)."""
    if keep_crop is not None:
        keep_crop = (osp.basename(osp.normpath(keep_crop[0])),) + tuple(keep_crop[1:])
    return score_sets(models, load_folders(data_folders, in_ch), sigmas, keep_crop, progress, device=device,
                      dtype=dtype)


def evaluate(specs, data_folders, sigmas, device='cpu', mac_size=64, time_size=256, time_runs=3, threads=None,
             keep_crop=None, progress=True, dtype=None):
    """Run every model on every image of every folder at every sigma (:func:`score`), with each
    model's cost (parameters, MACs per pixel, ms per megapixel) added to its rows.

    Returns ``(rows, crops)`` as :func:`score`, the rows also carrying params, macs_per_pixel and
    ms_per_mp.
    """
    if threads:
        torch.set_num_threads(int(threads))
    in_ch = common_in_channels(specs)
    models = load_models(specs, device)
    costs = {name: model_costs(net, in_ch, multiple, device, mac_size, time_size, time_runs, dtype)
             for name, (net, multiple) in models.items()}
    rows, crops = score(models, in_ch, data_folders, sigmas, device, keep_crop, progress, dtype)
    return [dict(row, **costs[row['model']]) for row in rows], crops
