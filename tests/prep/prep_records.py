"""Helpers of the tests in this folder: jobs over in-memory images and reading an LMDB raw."""
import lmdb
import numpy as np

from gimsanet_prep.jobs import Job


def text(path):
    with open(path) as f:
        return f.read()


def jobs_for(images):
    """Jobs for ``{key: image}``, one record each."""
    return [Job(key, (lambda k, im: lambda: [(k, im)])(key, img)) for key, img in images.items()]


def random_images(n, shape=(24, 20, 3), seed=0):
    rng = np.random.default_rng(seed)
    return {f'img{i:03d}': rng.integers(0, 256, shape, dtype=np.uint8) for i in range(n)}


def read_all(path):
    """``{key: stored bytes}`` of an LMDB."""
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        out = {k.decode(): bytes(v) for k, v in txn.cursor()}
    env.close()
    return out
