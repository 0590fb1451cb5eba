"""Weights that ship inside the package (``gimsanet_arch/weights/``), used when the user names none.

Each ``<name>.safetensors`` (tensors only: loading it can run no code; BasicSR's ``params`` group,
see :mod:`gimsanet_arch.training.safetensors_io`) has a ``<name>.json`` beside it that says how it
was made: the network options, the training data, the noise, the iterations and CPU-hours, the
option file, the validation PSNR and the file's SHA-256, which is checked every time the weights
are used (a damaged or replaced file is refused). The files are written by
``scripts/cpu_recipe/ship_weights.py`` from a run, which also records their CBSD68/BSD68 scores.
"""
import json
import os.path as osp

from gimsanet_arch.inference.network import ModelSpec
from gimsanet_prep.inputs import file_sha256 as sha256  # the records' checksum

WEIGHTS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'weights')
# GIMSANet trained on CBSD432 with the CPU recipe (docs/cpu_recipe.md), from the run that leads on the
# CBSD432 hold-out (never chosen on CBSD68); replaced as the long runs go on. The race's 0.5 CPU-hour PackagePhotos weights
# are retired (their numbers stay in docs/race.md).
DEFAULT_NAME = 'GIMSANet-NoGrad_BlindColor_CBSD432'
# GIMSANet trained on BSD400 (gray) with the same recipe, chosen on the BSD400 hold-out
GRAY_NAME = 'GIMSANet-NoGrad_BlindGray_BSD400'
# GIMSANet fine-tuned from the colour weights on synthetic camera noise (CameraNoiseDataset,
# docs/real_noise.md), chosen on the CBSD432 hold-out with that noise: for real photos
REAL_NAME = 'GIMSANet_RealCamera_CBSD432'
SHIPPED = (DEFAULT_NAME, GRAY_NAME, REAL_NAME)
NOISE_KINDS = ('real', 'gaussian')
# what gimsanet-denoise uses for each noise and kind of photo when given no model; a kind without
# weights of its own uses the colour ones (a gray photo is then replicated to three channels and back)
DEFAULTS = {('gaussian', 'color'): DEFAULT_NAME, ('gaussian', 'gray'): GRAY_NAME, ('real', 'color'): REAL_NAME}


def default_name(kind, noise='gaussian'):
    """The shipped weights for a ``'gray'`` or ``'color'`` photo with ``'real'`` or ``'gaussian'`` noise."""
    if noise not in NOISE_KINDS:
        raise ValueError(f'noise must be one of {NOISE_KINDS}, got {noise!r}')
    return DEFAULTS.get((noise, kind)) or DEFAULTS[(noise, 'color')]


def weights_path(name=DEFAULT_NAME):
    return osp.join(WEIGHTS_DIR, name + '.safetensors')


def info(name=DEFAULT_NAME):
    """The ``<name>.json`` record of shipped weights (ValueError when they are not installed)."""
    path = osp.join(WEIGHTS_DIR, name + '.json')
    if not (osp.isfile(path) and osp.isfile(weights_path(name))):
        raise ValueError(f'no shipped weights named {name!r} in {WEIGHTS_DIR} (give --weights or -opt)')
    with open(path) as f:
        return json.load(f)


def default_spec(name=DEFAULT_NAME):
    """A :class:`ModelSpec` for shipped weights, loaded strictly, after their SHA-256 is checked
    against the record (ValueError naming the file when it differs)."""
    record = info(name)
    path = weights_path(name)
    digest = sha256(path)
    if digest != record['sha256']:
        raise ValueError(f'shipped weights {path} do not match their record (sha256 {digest[:12]}..., recorded '
                         f'{record["sha256"][:12]}...): the file is damaged or was replaced; reinstall the package')
    return ModelSpec(name, record['network_g'], path, param_key='params', strict=True)


def note(name=DEFAULT_NAME, why=''):
    """One paragraph for the user: what the default weights are, why they were picked (``why``) and
    what they were trained on."""
    r = info(name)
    why = f' {why}' if why else ''
    return (f'note: no model given, using the shipped weights {name}{why} ({r["network_g"]["type"]}, grad_mode '
            f'{r["network_g"].get("grad_mode", "official")}, {r["noise"]}): trained on {r["trained_on"]} for '
            f'{r["iterations"]:,} iterations ({r["cpu_hours"]:.2f} CPU-hours; {r["recipe"]}). '
            f'Validation: {r["validation"]}. Use --weights or -opt for your own model.')
