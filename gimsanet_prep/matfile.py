"""MATLAB ``.mat`` arrays (e.g. SIDD's validation blocks): v5 files via scipy, v7.3 (HDF5) via h5py.

scipy and h5py are imported only when a ``.mat`` file is read.
"""
import os

import numpy as np

from gimsanet_prep.errors import InputError


def load_mat_array(path, name):
    """Load variable ``name`` of a MATLAB file as a numpy array in MATLAB's axis order.

    MATLAB 5 files (e.g. SIDD's ``ValidationNoisyBlocksSrgb.mat``) are read with
    ``scipy.io.loadmat``; v7.3 (HDF5) files with h5py, whose reversed (column-major) axes are
    transposed back, so both give e.g. (40, 32, 256, 256, 3).

    Raises:
        InputError: naming the file when it is missing, unreadable or lacks the variable.
    """
    if not os.path.isfile(path):
        raise InputError([f'{path}: file not found'])
    import scipy.io
    try:
        mat = scipy.io.loadmat(path, variable_names=[name])
    except NotImplementedError:  # scipy: "Please use HDF reader for matlab v7.3 files"
        mat = None
    except Exception as exc:  # noqa: BLE001  (any parse failure: try HDF5, else report)
        if not _is_hdf5(path):
            raise InputError([f'{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})'])
        mat = None
    if mat is None:
        return _load_hdf5(path, name)
    if name not in mat:
        try:
            found = [v[0] for v in scipy.io.whosmat(path)]
        except Exception:  # noqa: BLE001
            found = []
        raise InputError([_missing_variable(path, name, found)])
    return mat[name]


def _missing_variable(path, name, found):
    return f'{path}: variable {name!r} not found (variables: {", ".join(found) or "none"})'


def _is_hdf5(path):
    try:
        import h5py
        return h5py.is_hdf5(path)
    except Exception:  # noqa: BLE001
        return False


def _load_hdf5(path, name):
    import h5py
    try:
        with h5py.File(path, 'r') as f:
            if name not in f:
                raise InputError([_missing_variable(path, name, list(f.keys()))])
            arr = np.asarray(f[name][()])
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError([f'{path}: unreadable MATLAB v7.3/HDF5 file ({type(exc).__name__}: {exc})'])
    return np.ascontiguousarray(np.transpose(arr))
