"""GIMSANet for BasicSR: importing this package registers the plugin's architectures, datasets,
losses and models in BasicSR's registries (after making basicsr 1.4.2 importable on today's stack).
"""
from gimsanet_arch import compat as _compat

_compat.apply()

from gimsanet_arch import archs, data, losses, metrics, models  # noqa: E402,F401  (registers classes)
from gimsanet_arch.version import __version__  # noqa: E402,F401
