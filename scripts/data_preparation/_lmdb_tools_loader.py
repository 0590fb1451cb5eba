"""Load ``gimsanet_arch/data/lmdb_tools.py`` for the preparation scripts in this folder.

Importing it as ``gimsanet_arch.data.lmdb_tools`` would first run ``gimsanet_arch/__init__``
(torch + basicsr, ~5 s); lmdb_tools needs neither, so the scripts load the file directly.
"""
import importlib.util
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_lmdb_tools():
    if 'gimsanet_arch.data.lmdb_tools' in sys.modules:
        return sys.modules['gimsanet_arch.data.lmdb_tools']
    if '_gimsanet_lmdb_tools' in sys.modules:
        return sys.modules['_gimsanet_lmdb_tools']
    spec = importlib.util.spec_from_file_location(
        '_gimsanet_lmdb_tools', os.path.join(REPO_ROOT, 'gimsanet_arch', 'data', 'lmdb_tools.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lt = load_lmdb_tools()
