"""Restormer's ``ImageCleanModel`` and NAFNet's ``ImageRestorationModel`` as thin layers on
:class:`~gimsanet_arch.models.denoise_model.DenoiseModel`, so the official option files train and
validate through ``basicsr train`` / ``basicsr test`` unchanged (only data paths, ``num_gpu`` and
sizes need to fit the machine).

Behaviour kept from the official code (swz30/Restormer, megvii-research/NAFNet; written anew):

Both
    * ``path.param_key`` (the official spelling) selects the checkpoint key to load
      (``path.param_key_g`` is BasicSR's and wins when both are given); ``strict_load_g``.
    * validation reads ``val.rgb2bgr`` (default true; only changes the channel order of saved
      images) and ``val.use_image`` (default true as in the official train loop):
      ``use_image: true`` computes the metrics on the uint8 images, ``false`` on the raw float
      network output and ground truth (output not clamped), exactly as the official
      ``calculate_psnr`` / ``calculate_ssim`` do for tensors: PSNR in float64 with peak 1 when the
      output's maximum is <= 1, else 255; SSIM is the official 3-D variant (an 11x11x11 Gaussian
      window across height, width and channels, replicate padding, constants from the same peak
      rule; ``ssim3d: false`` in a metric's options selects the official 2-D one, ``test_y_channel``
      the Y-channel one). Other metric types go to BasicSR on uint8 images.
ImageCleanModel (Restormer)
    * L1 (any ``*_opt`` loss), ``train.use_grad_clip`` (norm 0.01), ``train.mixing_augs`` mixup,
      progressive ``mini_batch_sizes``/``iters``/``gt_sizes`` in ``datasets.train``,
      ``val.window_size`` reflect padding, EMA (``train.ema_decay``, validation on the EMA net) -
      all provided by DenoiseModel with the official semantics.
ImageRestorationModel (NAFNet)
    * ``train.use_grad_clip`` defaults to **true** (norm 0.01), as in the official model;
    * validation with the training network as is (NAFNet pads internally; no outer padding unless
      ``val.window_size``/``pad_multiple`` is set); ``val.grids`` with ``crop_size_h``/``crop_size_w``
      (or ``crop_size_h_ratio``/``crop_size_w_ratio``) runs overlapping crops in batches of
      ``val.max_minibatch`` and averages the overlaps uniformly, as the official ``grids()``.
"""
import math
from copy import deepcopy
from os import path as osp

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from basicsr.metrics import calculate_metric
from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from gimsanet_arch.inference import engine
from gimsanet_arch.models.denoise_model import DenoiseModel


# ---------------------------------------------------------------------------------------- metrics
def _to_hwc64(img):
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu()
        if img.ndim == 4:
            img = img.squeeze(0)
        img = img.numpy().transpose(1, 2, 0)
    return np.asarray(img).astype(np.float64)


def _prepare(img1, img2, crop_border, input_order):
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f'Wrong input_order {input_order}; use HWC or CHW')
    tensors = isinstance(img1, torch.Tensor)
    img1, img2 = _to_hwc64(img1), _to_hwc64(img2)
    if not tensors:
        img1 = reorder_image(img1, input_order=input_order).astype(np.float64)
        img2 = reorder_image(img2, input_order=input_order).astype(np.float64)
    if img1.shape != img2.shape:
        raise ValueError(f'Image shapes differ: {img1.shape}, {img2.shape}')
    if crop_border:
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img1, img2


def official_psnr(img1, img2, crop_border=0, input_order='HWC', test_y_channel=False, **_):
    """The official Restormer/NAFNet ``calculate_psnr``: numpy images or tensors, peak 1 when
    ``img1.max() <= 1`` else 255, float64."""
    img1, img2 = _prepare(img1, img2, crop_border, input_order)
    if test_y_channel:
        img1, img2 = to_y_channel(img1), to_y_channel(img2)
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float('inf')
    peak = 1. if img1.max() <= 1 else 255.
    return float(20. * np.log10(peak / np.sqrt(mse)))


def _gaussian_window_3d():
    g = cv2.getGaussianKernel(11, 1.5)
    w2 = np.outer(g, g.transpose())
    return torch.tensor(np.stack([w2 * k for k in g[:, 0]], axis=0), dtype=torch.float32)[None, None]


def _ssim_3d(img1, img2, peak):
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    kernel = _gaussian_window_3d()

    def filt(x):
        x = F.pad(x[None, None], (5, 5, 5, 5, 5, 5), mode='replicate')
        return F.conv3d(x, kernel)[0, 0]

    a = torch.from_numpy(img1).float()
    b = torch.from_numpy(img2).float()
    mu1, mu2 = filt(a), filt(b)
    s1 = filt(a * a) - mu1 ** 2
    s2 = filt(b * b) - mu2 ** 2
    s12 = filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def _ssim_2d(img1, img2, peak, border=None):
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(g, g.transpose())
    kw = {} if border is None else {'borderType': border}

    def filt(x):
        y = cv2.filter2D(x, -1, window, **kw)
        return y if border is not None else y[5:-5, 5:-5]

    mu1, mu2 = filt(img1), filt(img2)
    s1 = filt(img1 ** 2) - mu1 ** 2
    s2 = filt(img2 ** 2) - mu2 ** 2
    s12 = filt(img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def official_ssim(img1, img2, crop_border=0, input_order='HWC', test_y_channel=False, ssim3d=True, **_):
    """The official Restormer/NAFNet ``calculate_ssim`` (3-D SSIM by default; see module doc)."""
    img1, img2 = _prepare(img1, img2, crop_border, input_order)
    if test_y_channel:
        y1, y2 = to_y_channel(img1), to_y_channel(img2)
        return _ssim_2d(y1[..., 0], y2[..., 0], 255, border=cv2.BORDER_REPLICATE)
    peak = 1 if img1.max() <= 1 else 255
    if ssim3d:
        return _ssim_3d(img1, img2, peak)
    return _ssim_2d(img1, img2, peak)


OFFICIAL_METRICS = {'calculate_psnr': official_psnr, 'calculate_ssim': official_ssim}


# ---------------------------------------------------------------------------------------- models
class _OfficialValidation:
    """Validation with the official ``rgb2bgr`` / ``use_image`` semantics (module docstring)."""

    def _map_official_path_keys(self, opt):
        path = opt.setdefault('path', {})
        if path.get('param_key') and not path.get('param_key_g'):
            path['param_key_g'] = path['param_key']

    def _result_image(self, tensor):
        # no clone, on purpose: the official tensor2img clamps in place, so their use_image: false
        # metrics see the clamped output; _image_metrics below relies on the same order
        return tensor2img([tensor], rgb2bgr=self.opt['val'].get('rgb2bgr', True))

    def _image_metrics(self, metrics_opt, output, gt):
        """Official metrics: on uint8 images with ``use_image`` (default), else on the raw tensors."""
        use_image = self.opt['val'].get('use_image', True)
        out_img, gt_img = self._result_image(output), self._result_image(gt)
        scores = {}
        for name, m_opt in metrics_opt.items():
            m_opt = deepcopy(dict(m_opt))
            mtype = m_opt.pop('type')
            fn = OFFICIAL_METRICS.get(mtype)
            if fn is None:
                scores[name] = calculate_metric({'img': out_img, 'img2': gt_img}, dict(m_opt, type=mtype))
            else:
                scores[name] = fn(out_img, gt_img, **m_opt) if use_image else fn(output, gt, **m_opt)
        return scores

    def _save_result(self, img, img_name, dataset_name, current_iter):
        if self.opt['is_train']:
            path = osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            path = osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}.png')
        imwrite(img, path)


@MODEL_REGISTRY.register()
class ImageCleanModel(_OfficialValidation, DenoiseModel):
    """Restormer's model type name (see the module docstring)."""

    def __init__(self, opt):
        self._map_official_path_keys(opt)
        super().__init__(opt)


@MODEL_REGISTRY.register()
class ImageRestorationModel(_OfficialValidation, DenoiseModel):
    """NAFNet's model type name (see the module docstring)."""

    def __init__(self, opt):
        self._map_official_path_keys(opt)
        super().__init__(opt)

    def init_training_settings(self):
        train_opt = self.opt['train']
        if 'use_grad_clip' not in train_opt and train_opt.get('grad_clip_norm') is None:
            train_opt['use_grad_clip'] = True  # the official default
            get_root_logger().info('ImageRestorationModel: use_grad_clip defaults to true (norm 0.01), as NAFNet')
        super().init_training_settings()

    def _inference_net(self):
        if hasattr(self, 'net_g_ema'):
            return self.net_g_ema
        return self.get_bare_model(self.net_g)

    def _pad_multiple(self):
        val_opt = self.opt.get('val') or {}
        return max(int(val_opt.get('pad_multiple', val_opt.get('window_size')) or 1), 1)

    def _grid_crop_size(self, h, w):
        val_opt = self.opt['val']
        ch = val_opt['crop_size_h'] if 'crop_size_h' in val_opt else int(val_opt['crop_size_h_ratio'] * h)
        cw = val_opt['crop_size_w'] if 'crop_size_w' in val_opt else int(val_opt['crop_size_w_ratio'] * w)
        return min(int(ch), h), min(int(cw), w)

    @staticmethod
    def _grid_starts(length, crop):
        n = (length - 1) // crop + 1
        step = crop if n == 1 else math.ceil((length - crop) / (n - 1) - 1e-8)
        starts, pos, last = [], 0, False
        while pos < length and not last:
            if pos + crop >= length:
                pos, last = length - crop, True
            starts.append(pos)
            pos += step
        return starts

    def _forward(self, net, batch):
        """The network on ``batch`` in chunks of ``val.max_minibatch``, padded to the multiple."""
        val_opt = self.opt.get('val') or {}
        chunk = int(val_opt.get('max_minibatch', batch.shape[0]) or batch.shape[0])
        multiple = self._pad_multiple()
        return torch.cat([engine.forward_padded(net, part, multiple) for part in batch.split(chunk)], dim=0)

    def test(self):
        net = self._inference_net()
        was_training = net.training
        net.eval()
        val_opt = self.opt.get('val') or {}
        with torch.no_grad():
            if val_opt.get('grids', False):
                b, _, h, w = self.lq.shape
                if b != 1:
                    raise ValueError('val.grids needs batch size 1')
                ch, cw = self._grid_crop_size(h, w)
                # the official grids(): all crops in batches of max_minibatch, overlaps averaged uniformly
                starts = (self._grid_starts(h, ch), self._grid_starts(w, cw))
                self.output = engine.tiled_forward(
                    lambda crops: engine.forward_padded(net, crops, self._pad_multiple()), self.lq, (ch, cw),
                    blend='uniform', starts=starts,
                    batch_size=int(val_opt.get('max_minibatch') or len(starts[0]) * len(starts[1])))
            else:
                self.output = self._forward(net, self.lq)
        if was_training:
            net.train()
