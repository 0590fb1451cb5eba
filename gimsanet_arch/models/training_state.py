"""What DenoiseModel changes in BasicSR's ``BaseModel`` for saving and resuming a run.

* Network checkpoints are written atomically (temp file, fsync, rename: a kill mid-save leaves the
  previous file, never a truncated one) in ``logger.save_checkpoint_format``: ``pth`` (default,
  BasicSR's layout), ``safetensors`` (the same groups, :mod:`gimsanet_arch.training.safetensors_io`)
  or ``both``. BasicSR retried a failed save three times and then trained on without saving; here a
  full disk ends the run (:class:`~gimsanet_arch.training.checkpoint.DiskFullError`), the previous
  files kept.
* Network checkpoints are read safely (:func:`~gimsanet_arch.training.checkpoint.load_network_checked`:
  weights-only unless ``path.trust_checkpoint`` / ``--trust-checkpoint``; one line naming the differing keys).
* Training states carry RNG states and the position in the epoch, and a resume continues exactly
  there (:mod:`gimsanet_arch.training.exact_resume`); validation does not shift the training
  randomness.
* DDP on CPU: no CUDA ``device_ids``; buffers are not broadcast at every forward
  (:func:`~gimsanet_arch.training.dist.wrap_for_training`).
"""
from os import path as osp

from basicsr.utils import get_root_logger
from gimsanet_arch.training import exact_resume
from gimsanet_arch.training.checkpoint import atomic_torch_save, load_network_checked, trusted
from gimsanet_arch.training.dist import wrap_for_training


class TrainingState:
    """Mixin of DenoiseModel (before BasicSR's ``BaseModel`` in the class order)."""

    @property
    def train_progress(self):
        """The run's :class:`~gimsanet_arch.training.exact_resume.TrainProgress` (None when the model
        was built outside BasicSR's train pipeline)."""
        return exact_resume.progress_of(self.opt)

    # ------------------------------------------------------------------ devices
    def model_to_device(self, net):
        return wrap_for_training(net, self.opt, self.device)

    # ------------------------------------------------------------------ network checkpoints
    def save_network(self, net, net_label, current_iter, param_key='params'):
        if self.opt.get('rank', 0) != 0:  # BasicSR: master_only
            return
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} parameter keys')
        groups = {key: {(k[7:] if k.startswith('module.') else k): v.cpu()
                        for k, v in self.get_bare_model(n).state_dict().items()} for n, key in zip(nets, keys)}
        stem = osp.join(self.opt['path']['models'], f'{net_label}_{"latest" if current_iter == -1 else current_iter}')
        fmt = (self.opt.get('logger') or {}).get('save_checkpoint_format', 'pth')
        if fmt in ('pth', 'both'):
            atomic_torch_save(groups, stem + '.pth')
        if fmt in ('safetensors', 'both'):
            from gimsanet_arch.training.safetensors_io import save_safetensors_checkpoint
            save_safetensors_checkpoint(groups, stem + '.safetensors')

    def load_network(self, net, load_path, strict=True, param_key='params'):
        twin = osp.splitext(str(load_path))[0] + '.safetensors'
        if str(load_path).endswith('.pth') and not osp.isfile(load_path) and osp.isfile(twin):
            load_path = twin  # a resumed run that saves safetensors only (BasicSR names the .pth)
        load_network_checked(self.get_bare_model(net), load_path, strict=strict, param_key=param_key,
                             trust=trusted(self.opt), logger=get_root_logger())

    # ------------------------------------------------------------------ training states
    def save_training_state(self, epoch, current_iter):
        exact_resume.write_training_state(self, epoch, current_iter, self.train_progress)

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        progress = self.train_progress
        if progress is not None:
            exact_resume.arm_resume(progress, resume_state)

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        self.current_iter = current_iter  # feed_data needs it for progressive patches
        progress = self.train_progress
        if progress is not None:
            progress.last_iter = current_iter
        super().update_learning_rate(current_iter, warmup_iter)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """BasicSR's validation, with the RNG states saved and restored around it: a resumed run
        (which does not repeat a validation) then draws the same training randomness."""
        states = exact_resume.capture_rng_states()
        try:
            return super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            exact_resume.restore_rng_states(states)
