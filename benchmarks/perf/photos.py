"""Real photos for the quality checks of the report: centre crops of the photos that ship inside
scikit-image (no download), the seeded test noise of docs/evaluation.md, and PSNR on the 8-bit
scale of the evaluation protocol.

A speed-up that changes the numbers (bf16, another implementation) is judged by how much it moves
the PSNR of the denoised photos: with trained weights that is the PSNR against the clean photo;
with random weights that PSNR means nothing, so the outputs are compared with each other instead.
"""
import numpy as np
import torch

from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
from gimsanet_arch.inference.photo import metric_image

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def load_photos(names=PHOTOS, crop=256):
    """``{name: float32 RGB H x W x 3 in [0, 1]}``: the centre ``crop`` x ``crop`` of each
    ``skimage.data`` photo (the whole photo where it is smaller)."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError('the photos come from scikit-image: pip install scikit-image') from None
    photos = {}
    for name in names:
        loader = getattr(data, name, None)
        if loader is None:
            raise ValueError(f'skimage.data has no photo {name!r}')
        img = np.asarray(loader())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = img[:, :, :3]
        h, w = img.shape[:2]
        top, left = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
        photos[name] = np.ascontiguousarray(img[top:top + crop, left:left + crop]).astype(np.float32) / 255.
    return photos


def noisy_tensor(clean, sigma, seed=0):
    """The photo with the evaluation noise at ``sigma`` (0..255 scale), as a 1 x 3 x H x W tensor."""
    noisy = add_test_noise(clean, sigma, seed=seed, channel_order='rgb')
    return torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]


def to_image(tensor):
    """A 1 x C x H x W output as an H x W x C float32 array."""
    return tensor.detach().float().cpu()[0].numpy().transpose(1, 2, 0)


def psnr(img, ref):
    """PSNR (dB) of two [0, 1] images after 8-bit quantisation (BasicSR's calculate_psnr on the
    images the evaluation protocol scores)."""
    from basicsr.metrics import calculate_psnr
    return float(calculate_psnr(metric_image(img, np.uint8), metric_image(ref, np.uint8), crop_border=0))


def denoise_all(forwards, photos, sigma, seed=0, device='cpu'):
    """``{variant: {photo: output image}}`` of each ``forwards[variant](noisy tensor on device)``."""
    inputs = {name: noisy_tensor(clean, sigma, seed).to(device) for name, clean in photos.items()}
    return {variant: {name: to_image(forward(x)) for name, x in inputs.items()}
            for variant, forward in forwards.items()}


def psnr_change(outputs, photos, reference, variant, trained):
    """How far ``variant``'s outputs are from ``reference``'s, per photo: with ``trained`` weights
    the PSNR change against the clean photos (dB, the largest over the photos); otherwise the
    PSNR of one output against the other (dB, the smallest). Also the largest absolute difference.
    Returns ``(change, metric name, max abs)``."""
    ref, out = outputs[reference], outputs[variant]
    max_abs = max(float(np.abs(out[n] - ref[n]).max()) for n in photos)
    if trained:
        change = max(abs(psnr(out[n], photos[n]) - psnr(ref[n], photos[n])) for n in photos)
        return change, 'PSNR change', max_abs
    return min(psnr(out[n], ref[n]) for n in photos), 'PSNR vs reference output', max_abs
