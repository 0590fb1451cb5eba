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
      network output and ground truth (output not clamped). ``type: calculate_psnr`` /
      ``calculate_ssim`` mean the official metrics (``calculate_psnr_official`` /
      ``calculate_ssim_official`` in ``gimsanet_arch.metrics.official_metric``: peak 1 or 255 by
      the output's maximum, 3-D SSIM unless ``ssim3d: false``). Other metric types go to BasicSR
      on uint8 images.
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
from os import path as osp

import torch

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from gimsanet_arch.inference import engine
from gimsanet_arch.models.denoise_model import DenoiseModel


# The official option files name BasicSR's metric types; these models score them the official way,
# with the registered official metrics (gimsanet_arch/metrics/official_metric.py). Other types
# go to BasicSR's metric of that name, on uint8 images.
OFFICIAL_METRIC_TYPES = {'calculate_psnr': 'calculate_psnr_official', 'calculate_ssim': 'calculate_ssim_official'}


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
        images = {'img': self._result_image(output), 'img2': self._result_image(gt)}
        tensors = {'img': output, 'img2': gt}
        scores = {}
        for name, m_opt in metrics_opt.items():
            official = OFFICIAL_METRIC_TYPES.get(m_opt['type'])
            if official is None:
                scores[name] = calculate_metric(images, m_opt)
            else:
                scores[name] = calculate_metric(images if use_image else tensors, dict(m_opt, type=official))
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

    VAL_OPTIONS = {
        'grids': 'validate in overlapping crops averaged uniformly, as the official grids()',
        'crop_size_h': 'grids: crop height in pixels',
        'crop_size_w': 'grids: crop width in pixels',
        'crop_size_h_ratio': 'grids: crop height as a fraction of the image height',
        'crop_size_w_ratio': 'grids: crop width as a fraction of the image width',
        'max_minibatch': 'grids: crops per forward pass',
    }

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

    def _forward_fn(self, net):
        """The network padded to the multiple, on the engine's fast path with ``val.dtype``."""
        return engine.make_forward(net, self._pad_multiple(), self._val_dtype(), device=self.device)

    def _forward(self, net, batch):
        """The network on ``batch`` in chunks of ``val.max_minibatch``, padded to the multiple."""
        val_opt = self.opt.get('val') or {}
        chunk = int(val_opt.get('max_minibatch', batch.shape[0]) or batch.shape[0])
        forward = self._forward_fn(net)
        return torch.cat([forward(part) for part in batch.split(chunk)], dim=0)

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
                    self._forward_fn(net), self.lq, (ch, cw),
                    blend='uniform', starts=starts,
                    batch_size=int(val_opt.get('max_minibatch') or len(starts[0]) * len(starts[1])))
            else:
                self.output = self._forward(net, self.lq)
        if was_training:
            net.train()
