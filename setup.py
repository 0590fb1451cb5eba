#!/usr/bin/env python
from setuptools import find_namespace_packages, setup


def read_version():
    namespace = {}
    with open('gimsanet_arch/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='gimsanet_arch',
    version=read_version(),
    description='GIMSANet (INDICON 2024) denoiser, with Restormer and NAFNet, as a BasicSR plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    # every folder of code, with or without an __init__.py (find_packages would drop one without);
    # the data folders are package_data below, not packages
    packages=find_namespace_packages(include=['gimsanet_arch', 'gimsanet_arch.*', 'gimsanet_prep', 'gimsanet_prep.*'],
                                     exclude=['*.__pycache__', 'gimsanet_arch.weights', 'gimsanet_prep.splits']),
    include_package_data=True,
    package_data={'gimsanet_arch': ['weights/*.safetensors', 'weights/*.json'],  # the shipped default weights
                  'gimsanet_prep': ['splits/*.txt']},  # the fixed validation hold-outs
    python_requires='>=3.9',
    install_requires=[
        'basicsr>=1.4.2',
        'torch',
        'torchvision',
        'lmdb',
        'opencv-python',
        'pyyaml',
        'h5py',
        'safetensors',  # tensors-only checkpoints: loading one cannot run code
        'scipy',
    ],
    extras_require={
        'test': ['pytest', 'matplotlib'],
        'plots': ['matplotlib'],
        # ONNX export and its check (onnxscript: torch's dynamo-based ONNX exporter needs it)
        'export': ['onnx', 'onnxruntime', 'onnxscript'],
        # GIMSANet in spandrel's registry (chaiNNer, ComfyUI, ...): gimsanet_arch.spandrel_support.install()
        'spandrel': ['spandrel'],
    },
    entry_points={'console_scripts': [
        'basicsr=gimsanet_arch.commands.basicsr_cli:main',
        'gimsanet-denoise=gimsanet_arch.commands.denoise:main',
        'gimsanet-benchmark=gimsanet_arch.commands.benchmark:main',
        'gimsanet-export=gimsanet_arch.export.cli:main',
    ]},
    license='Apache-2.0',
)
