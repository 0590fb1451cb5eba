"""Finding and loading BasicSR training states, on CPU or GPU, from any working directory.

``--auto_resume`` takes the newest *complete* training state: ``<iter>.state`` must load, hold an
``iter``, and every network it resumes (``models/net_<name>_<iter>.pth``) must exist and be a
complete checkpoint. Anything else (a kill during a save with plain ``torch.save``, a disk that
filled up, a file copied half-way) is skipped with a warning and the next older state is tried.

States load weights-only (:mod:`gimsanet_arch.training.safe_state`): a state that needs any other
Python object stops the run with one line naming it, also under ``--auto_resume`` (a crafted
newest state is not damage to skip quietly), unless ``path.trust_checkpoint`` / ``--trust-checkpoint``.
"""
import glob
import os
import os.path as osp
import warnings
import zipfile

from gimsanet_arch.training.checkpoint import trusted
from gimsanet_arch.training.safe_state import RefusedStateError, load_state_file  # noqa: F401 (re-exported)


class ResumeError(RuntimeError):
    """``path.resume_state`` names a state that cannot be used."""


class ResumeWarning(UserWarning):
    """A training state was skipped during ``--auto_resume``."""


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


def check_complete_checkpoint(path):
    """Raise ``ValueError`` unless ``path`` is a complete ``torch.save`` zip archive (central
    directory present and every member's CRC right; a truncated file fails here). A missing
    ``.pth`` whose ``.safetensors`` twin exists (``logger.save_checkpoint_format: safetensors``) is
    checked by reading that file's tensors."""
    twin = osp.splitext(path)[0] + '.safetensors'
    if path.endswith('.pth') and not osp.isfile(path) and osp.isfile(twin):
        from gimsanet_arch.training.safetensors_io import load_safetensors_checkpoint
        try:
            load_safetensors_checkpoint(twin)
        except Exception as err:  # noqa: BLE001  (CheckpointError: a truncated or damaged file)
            raise ValueError(str(err)) from None
        return
    if not osp.isfile(path):
        raise ValueError(f'{path} is missing')
    if osp.getsize(path) == 0:
        raise ValueError(f'{path} is empty')
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f'{path} is truncated or not a checkpoint ({err})') from None
    if bad is not None:
        raise ValueError(f'{path} is corrupt (bad CRC in {bad})')


def resumed_network_paths(opt, resume_iter):
    """``models/net_<name>_<iter>.pth`` for every ``network_<name>`` the resume reloads."""
    ignore = opt['path'].get('ignore_resume_networks') or []
    paths = []
    for key in opt:
        if key.startswith('network_') and key not in ignore:
            paths.append(osp.join(opt['path']['models'], f'net_{key[len("network_"):]}_{resume_iter}.pth'))
    return paths


def numbered_checkpoints(run, net='g', formats=('pth', )):
    """``[(iteration, path)]`` of a run folder's numbered network checkpoints
    (``models/net_<net>_<iter>.<format>``), in order; ``net_g_latest.pth`` is not one of them.
    ``formats``: ``pth`` only by default (what the scoring scripts load); ``('pth', 'safetensors')``
    finds what any ``logger.save_checkpoint_format`` saved."""
    items = []
    for fmt in formats:
        for path in glob.glob(osp.join(run, 'models', f'net_{net}_*.{fmt}')):
            stem = osp.splitext(osp.basename(path))[0][len(f'net_{net}_'):]
            if stem.isdigit():
                items.append((int(stem), path))
    return sorted(items)


def remove_stale_temp_files(opt):
    """Delete ``.<name>.*.tmp`` files a killed save left in ``models/`` and ``training_states/``
    (rank 0 only; they are never picked up, this only frees the disk space)."""
    from basicsr.utils.dist_util import get_dist_info
    if get_dist_info()[0] != 0:
        return []
    removed = []
    for key in ('models', 'training_states'):
        folder = opt['path'].get(key)
        if folder and osp.isdir(folder):
            for tmp in glob.glob(osp.join(folder, '.*.tmp')):
                try:
                    os.remove(tmp)
                    removed.append(tmp)
                except OSError:
                    pass
    return removed


def _warn(message):
    warnings.warn(message, ResumeWarning, stacklevel=3)
    try:
        print(f'WARNING: {message}', flush=True)  # the root logger is not set up yet (BasicSR rule)
    except Exception:  # noqa: BLE001
        pass


def find_resume_state(opt):
    """``(path, state)`` of the newest complete training state of the run, or ``(None, None)``."""
    num_gpu = opt.get('num_gpu', 0)
    state_dir = opt['path'].get('training_states') or osp.join(
        opt.get('root_path', os.getcwd()), 'experiments', opt['name'], 'training_states')
    trust = trusted(opt)
    for resume_iter, path in list_training_states(state_dir):
        try:
            check_complete_checkpoint(path)
            state = load_state_file(path, num_gpu, trust=trust)
            if not isinstance(state, dict) or 'iter' not in state:
                raise ValueError('not a BasicSR training state (no "iter" key)')
            if int(state['iter']) != resume_iter:
                raise ValueError(f'file name says iter {resume_iter}, content says {state["iter"]}')
            for net_path in resumed_network_paths(opt, resume_iter):
                check_complete_checkpoint(net_path)
        except RefusedStateError as err:  # not damage: the user decides whether to trust it
            raise ResumeError(f'--auto_resume: {err}') from None
        except Exception as err:  # noqa: BLE001 - a damaged file must not stop the resume
            _warn(f'auto_resume: skipping training state {path}: {err}')
            continue
        return path, state
    return None, None


def _refuse_restart_over_checkpoints(opt):
    """``--auto_resume`` found no state to resume. If the run folder still holds numbered network
    checkpoints (a finished run whose states were removed, or states that are all damaged), BasicSR
    would archive the folder and train again from iteration 0: the user asked to continue, so stop
    with one line instead. A folder without checkpoints starts fresh, as in BasicSR."""
    models = opt['path'].get('models')
    if not models or not osp.isdir(models):
        return
    run = osp.dirname(models)
    numbered = [item for key in opt if key.startswith('network_')  # safetensors-only runs save no .pth
                for item in numbered_checkpoints(run, key[len('network_'):], formats=('pth', 'safetensors'))]
    if numbered:
        raise ResumeError(f'--auto_resume: {max(numbered)[1]} exists but no complete training state does: the '
                          'run has finished (its states were removed) or its states are damaged; it is not '
                          'restarted from iteration 0. Drop --auto_resume to archive the folder and train again, '
                          'or give another name')


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state``.

    * ``--auto_resume`` searches ``<root>/experiments/<name>/training_states`` (the run's own folder,
      ``opt['path']['training_states']``), not ``./experiments`` of the current directory, and takes
      the newest complete state (see module doc). With none, but numbered checkpoints in ``models/``,
      it stops with :class:`ResumeError` rather than let BasicSR archive the run and start over.
    * ``path.resume_state`` given explicitly must be complete, or the run stops with a clear error.
    * ``num_gpu: 0`` loads on CPU (basicsr calls ``torch.cuda.current_device()``).
    """
    from basicsr.utils import check_resume

    if opt.get('auto_resume'):
        path, state = find_resume_state(opt)
        if path is None:
            _refuse_restart_over_checkpoints(opt)
            return None
        remove_stale_temp_files(opt)
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        if not osp.isfile(path):
            raise ResumeError(f'path.resume_state: training state not found: {path}')
        try:
            check_complete_checkpoint(path)
            state = load_state_file(path, opt.get('num_gpu', 0), trust=trusted(opt))
        except RefusedStateError as err:
            raise ResumeError(f'path.resume_state: {err}') from None
        except Exception as err:  # noqa: BLE001
            raise ResumeError(f'path.resume_state: cannot load training state {path}: {err}') from None
        if not isinstance(state, dict) or 'iter' not in state:
            raise ResumeError(f'path.resume_state: {path} is not a BasicSR training state (no "iter" key)')
    else:
        return None
    opt['path']['resume_state'] = path
    check_resume(opt, state['iter'])
    return state


def launcher_restart_count():
    """How often torchrun (``--max-restarts``) has restarted this worker group (0: first start)."""
    try:
        return int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))
    except ValueError:
        return 0


def resume_after_launcher_restart(argv):
    """``argv`` with ``--auto_resume`` added when the launcher restarted the group after a failure:
    the restarted workers get the command line of the first start, and starting over from
    iteration 0 would throw away (and archive) everything the run saved."""
    restarts = launcher_restart_count()
    if restarts == 0 or '--auto_resume' in argv:
        return argv
    if os.environ.get('RANK', '0') == '0':
        print(f'Restarted by the launcher (restart {restarts}): continuing from the newest complete training '
              'state (--auto_resume).', flush=True)
    return list(argv) + ['--auto_resume']


class ExperimentGuard:
    """Undo what a failed *fresh* training run created before it saved anything.

    BasicSR's ``make_exp_dirs`` renames an existing ``experiments/<name>`` to
    ``<name>_archived_<time>`` and starts an empty one. When the run then stops on bad input
    before its first checkpoint, :meth:`rollback` removes the new, checkpoint-less folder (and its
    ``tb_logger/<name>``) and renames the archived one back. A run that saved a checkpoint, or a
    resumed run, is never touched. Rank 0 only.
    """

    def __init__(self, root, name):
        self.paths = [osp.join(root, 'experiments', name), osp.join(root, 'tb_logger', name)]
        self.before = {path: (osp.exists(path), set(glob.glob(glob.escape(path) + '_archived_*')))
                       for path in self.paths}

    @staticmethod
    def _has_checkpoints(exp):
        return bool(glob.glob(osp.join(exp, 'models', '*.pth')) or glob.glob(osp.join(exp, 'models', '*.safetensors'))
                    or glob.glob(osp.join(exp, 'training_states', '*.state')))

    def rollback(self):
        """Returns the folders removed."""
        import shutil
        from basicsr.utils.dist_util import get_dist_info
        if get_dist_info()[0] != 0 or self._has_checkpoints(self.paths[0]):
            return []
        removed = []
        for path in self.paths:
            existed, archives = self.before[path]
            new_archives = sorted(set(glob.glob(glob.escape(path) + '_archived_*')) - archives)
            created = osp.exists(path) and (not existed or new_archives)
            if not created:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            if len(new_archives) == 1:
                os.rename(new_archives[0], path)
        return removed
