"""Imports every `*_dataset.py` in this folder, so a new file registers itself by existing."""
from gimsanet_arch.registry_scan import import_modules

_modules = import_modules(__name__, __file__, '_dataset')
