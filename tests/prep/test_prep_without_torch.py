"""gimsanet_prep needs neither torch nor basicsr nor gimsanet_arch: its modules import without
them, and a preparation script runs to a verified LMDB with them hidden."""
import os
import pkgutil
import subprocess
import sys

import cv2
import numpy as np

import gimsanet_prep
from gimsanet_prep.verify import read_lmdb_image, verify_paired_lmdbs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HIDDEN = ('torch', 'basicsr', 'gimsanet_arch')

# Runs argv[1:] as `python script args` would, with every HIDDEN package unimportable (as if not
# installed); fails first if one of them was already imported (then hiding would prove nothing).
HIDE_AND_RUN = f'''
import runpy, sys
HIDDEN = {HIDDEN!r}
assert not [m for m in sys.modules if m.split('.')[0] in HIDDEN], 'imported before it could be hidden'
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HIDDEN:
            raise ImportError(f'{{name}} is hidden in this test')
sys.meta_path.insert(0, Hide())
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit('torch is not hidden')
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_modules_import_neither_torch_nor_basicsr():
    modules = sorted(f'gimsanet_prep.{m.name}' for m in pkgutil.iter_modules(gimsanet_prep.__path__))
    assert 'gimsanet_prep.images' in modules and 'gimsanet_prep.cli' in modules
    code = ('import importlib, sys\n'
            f'for name in {modules!r}: importlib.import_module(name)\n'
            f'print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HIDDEN!r})))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'


def test_polyu_script_runs_with_torch_hidden(tmp_path):
    folder = tmp_path / 'raw'
    folder.mkdir()
    rng = np.random.default_rng(0)
    clean = {}
    for name in ('cam_a_1', 'cam_b_2'):
        clean[name] = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f'{name}_mean.png'), clean[name])
        assert cv2.imwrite(str(folder / f'{name}_real.png'), 255 - clean[name])
    script = os.path.join(REPO_ROOT, 'scripts', 'data_preparation', 'polyu.py')
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, '-c', HIDE_AND_RUN, script, '--input', str(folder), '--output-root',
                           str(out), '--verify', '--no-progress', '--workers', '1', '--any-count'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'verified {out / "gt.lmdb"}: 2 records OK' in proc.stdout
    reports = verify_paired_lmdbs(str(out / 'input.lmdb'), str(out / 'gt.lmdb'))
    assert [r['records'] for r in reports] == [2, 2]
    assert np.array_equal(read_lmdb_image(str(out / 'gt.lmdb'), 'cam_b_2'), clean['cam_b_2'])
    assert np.array_equal(read_lmdb_image(str(out / 'input.lmdb'), 'cam_a_1'), 255 - clean['cam_a_1'])
