"""Import every ``<something><suffix>.py`` module of a subpackage so its classes register."""
import importlib
import os.path as osp
from os import listdir


def import_modules(package_name, package_file, suffix):
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(osp.splitext(f)[0] for f in listdir(folder) if f.endswith(suffix + '.py'))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
