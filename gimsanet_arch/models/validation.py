"""Inference and the validation loop of :class:`~gimsanet_arch.models.denoise_model.DenoiseModel`.

A mixin placed before BasicSR's ``SRModel`` in the class's bases: ``test`` runs the unwrapped network
(the EMA copy when there is one) through the inference engine's fast path, padded to the network's
multiple and optionally tiled; the loop scores uint8 images with BasicSR's metrics (float metrics on
the unclipped output), can report the noisy input's metrics and saves results where BasicSR would.
The official Restormer/NAFNet model types override the hooks at the end.
"""
from os import path as osp

from tqdm import tqdm

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import METRIC_REGISTRY
from gimsanet_arch.archs.arch_info import pad_multiple as arch_pad_multiple
from gimsanet_arch.inference import engine


def _wants_float(metric_opt):
    return getattr(METRIC_REGISTRY.get(metric_opt['type']), 'float_input', False)


def _float_hwc(tensor):
    """1xCxHxW tensor -> HxWxC float32 array, values untouched (RGB order, as the network sees it)."""
    return tensor[0].float().numpy().transpose(1, 2, 0)


class DenoiseValidation:
    """Mixin of DenoiseModel: ``test`` and BasicSR's validation hooks."""

    def _inference_net(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        return net

    def _pad_multiple(self):
        val_opt = self.opt.get('val') or {}
        multiple = val_opt.get('pad_multiple', val_opt.get('window_size'))
        if multiple is None:
            multiple = arch_pad_multiple(self.get_bare_model(self.net_g))
        return max(int(multiple or 1), 1)

    def _val_dtype(self):
        val_opt = self.opt.get('val') or {}  # its value is checked up front (option_checks.check_values)
        return engine.resolve_dtype(val_opt.get('dtype', 'auto'), self.device)

    def test(self):
        net = self._inference_net()
        was_training = net.training
        net.eval()
        val_opt = self.opt.get('val') or {}
        self.output = engine.run(net, self.lq, self._pad_multiple(), tile=val_opt.get('tile'),
                                 overlap=int(val_opt.get('tile_overlap', 32)), dtype=self._val_dtype())
        if was_training:
            net.train()

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if self.opt['rank'] == 0:
            self.nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset_name = dataloader.dataset.opt['name']
        val_opt = self.opt['val']
        metrics_opt = val_opt.get('metrics') or {}
        report_input = bool(val_opt.get('report_input', False) and metrics_opt)
        if metrics_opt:
            self._initialize_best_metric_results(dataset_name)
        self.metric_results = {name: 0. for name in metrics_opt}
        input_results = {name: 0. for name in metrics_opt}
        pbar = tqdm(total=len(dataloader), unit='image') if val_opt.get('pbar', False) else None

        count = 0
        for val_data in dataloader:
            img_name = osp.splitext(osp.basename(str(val_data['lq_path'][0]).split(':')[-1]))[0]
            self.feed_data(val_data)
            self.test()
            output = self.output.detach().cpu()
            if save_img:
                self._save_result(self._result_image(output), img_name, dataset_name, current_iter)
            if hasattr(self, 'gt') and metrics_opt:
                gt = self.gt.detach().cpu()
                for name, value in self._image_metrics(metrics_opt, output, gt).items():
                    self.metric_results[name] += value
                if report_input:
                    for name, value in self._image_metrics(metrics_opt, self.lq.detach().cpu(), gt).items():
                        input_results[name] += value
            count += 1
            del self.lq, self.output
            if hasattr(self, 'gt'):
                del self.gt
            if pbar:
                pbar.update(1)
                pbar.set_description(f'Test {img_name}')
        if pbar:
            pbar.close()
        if metrics_opt and count:
            for name in self.metric_results:
                self.metric_results[name] /= count
                self._update_best_metric_result(dataset_name, name, self.metric_results[name], current_iter)
            self.input_metric_results = {k: v / count for k, v in input_results.items()} if report_input else None
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    # hooks of the validation loop (the official Restormer/NAFNet model types override them)
    def _result_image(self, tensor):
        """Network output (1xCxHxW, [0, 1]) -> the uint8 image that is saved and scored.
        (A clone: ``tensor2img`` clamps its input in place, which would clip the float metrics' data.)"""
        return tensor2img([tensor.clone()])

    def _image_metrics(self, metrics_opt, output, gt):
        """``{metric name: value}`` for one image: BasicSR's metrics on uint8 images; metrics marked
        ``float_input`` (``calculate_psnr_float``, ...) on the unclipped float output."""
        data = {'img': self._result_image(output), 'img2': self._result_image(gt)}
        float_data = {'img': _float_hwc(output), 'img2': _float_hwc(gt)}
        return {name: calculate_metric(float_data if _wants_float(m_opt) else data, m_opt)
                for name, m_opt in metrics_opt.items()}

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        inputs = getattr(self, 'input_metric_results', None)
        if inputs:
            text = ', '.join(f'{name}: {value:.4f}' for name, value in inputs.items())
            get_root_logger().info(f'Validation {dataset_name} noisy input (before denoising): {text}')
            if tb_logger:
                for name, value in inputs.items():
                    tb_logger.add_scalar(f'metrics/{dataset_name}/input_{name}', value, current_iter)

    def _save_result(self, img, img_name, dataset_name, current_iter):
        if self.opt['is_train']:
            path = osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
        imwrite(img, path)
