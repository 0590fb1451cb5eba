"""Finding and loading BasicSR training states, on CPU or GPU, from any working directory."""
import os
import os.path as osp
import warnings

import torch


def list_training_states(state_dir):
    """Return ``[(iter, path)]`` for the ``<iter>.state`` files of a run, newest first."""
    if not osp.isdir(state_dir):
        return []
    states = []
    for name in os.listdir(state_dir):
        stem, ext = osp.splitext(name)
        if ext == '.state' and stem.isdigit():
            states.append((int(stem), osp.join(state_dir, name)))
    return sorted(states, reverse=True)


def load_state_file(path, num_gpu=0):
    """Load a trusted training state. ``weights_only=False``: states hold optimizer/scheduler
    objects (e.g. ``collections.Counter`` milestones) that PyTorch >= 2.6 refuses by default."""
    if num_gpu and torch.cuda.is_available():
        device = torch.device('cuda', torch.cuda.current_device())
    else:
        device = torch.device('cpu')
    return torch.load(path, map_location=device, weights_only=False)


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state``.

    * ``--auto_resume`` searches ``<root>/experiments/<name>/training_states`` (the run's own folder,
      ``opt['path']['training_states']``), not ``./experiments`` of the current directory.
    * It takes the newest state that loads; a truncated file (killed mid-save) is skipped with a
      warning instead of crashing the resume.
    * ``num_gpu: 0`` loads on CPU (basicsr calls ``torch.cuda.current_device()``).
    """
    from basicsr.utils import check_resume

    num_gpu = opt.get('num_gpu', 0)
    candidates = []
    if opt.get('auto_resume'):
        state_dir = opt['path'].get('training_states') or osp.join(
            opt.get('root_path', os.getcwd()), 'experiments', opt['name'], 'training_states')
        candidates = [path for _, path in list_training_states(state_dir)]
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        if not osp.isfile(path):
            raise FileNotFoundError(f'path.resume_state: training state not found: {path}')
        candidates = [path]

    for path in candidates:
        try:
            state = load_state_file(path, num_gpu)
            if not isinstance(state, dict) or 'iter' not in state:
                raise ValueError('not a BasicSR training state (no "iter" key)')
        except Exception as err:  # noqa: BLE001 - a damaged file must not stop the resume
            if not opt.get('auto_resume'):
                raise RuntimeError(f'Cannot load training state {path}: {err}') from err
            warnings.warn(f'Skipping unreadable training state {path}: {err}')
            continue
        opt['path']['resume_state'] = path
        check_resume(opt, state['iter'])
        return state
    return None
