"""Imports every ``*_metric.py`` in this folder (BasicSR does not scan a plugin's metrics)."""
from gimsanet_arch.registry_scan import import_modules

_modules = import_modules(__name__, __file__, '_metric')
