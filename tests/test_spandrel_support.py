"""GIMSANet through spandrel (the optional extra): found in spandrel's registry after install(),
loaded from the shipped weights file, the same output as gimsanet-denoise, honest fp16/bf16 flags."""
import cv2
import numpy as np
import pytest
import torch

spandrel = pytest.importorskip('spandrel')

from gimsanet_arch import spandrel_support  # noqa: E402
from gimsanet_arch.commands import denoise  # noqa: E402
from gimsanet_arch.inference import shipped_weights  # noqa: E402


@pytest.fixture(scope='module')
def descriptor():
    spandrel_support.install()
    spandrel_support.install()  # twice: no duplicate error
    return spandrel.ModelLoader().load_from_file(shipped_weights.weights_path())


def _photo(size=64):
    from skimage import data
    rng = np.random.default_rng(0)
    clean = data.astronaut()[96:96 + size, 120:120 + size].astype(np.float32) / 255.
    return np.clip(clean + rng.normal(0, 25 / 255., clean.shape), 0, 1).astype(np.float32)


def test_descriptor(descriptor):
    assert descriptor.architecture.id == 'GIMSANet' and descriptor.purpose == 'Restoration'
    assert descriptor.scale == 1 and descriptor.input_channels == descriptor.output_channels == 3
    assert descriptor.size_requirements.check(37, 53)  # any size


def test_same_output_as_gimsanet_denoise(descriptor, tmp_path):
    noisy = _photo()
    cv2.imwrite(str(tmp_path / 'noisy.png'), cv2.cvtColor((noisy * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    assert denoise.main([str(tmp_path / 'noisy.png'), '-o', str(tmp_path / 'out'), '--dtype', 'fp32',
                         '--noise', 'gaussian', '--no-progress']) == 0  # the weights the descriptor loads
    ours = cv2.cvtColor(cv2.imread(str(tmp_path / 'out' / 'noisy.png')), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(cv2.cvtColor(cv2.imread(str(tmp_path / 'noisy.png')), cv2.COLOR_BGR2RGB)).float() / 255.
    descriptor.model.eval()
    with torch.no_grad():
        theirs = descriptor(x.permute(2, 0, 1)[None])[0].permute(1, 2, 0).clamp(0, 1).numpy()
    theirs = (theirs * 255).round().astype(np.uint8)
    assert np.abs(theirs.astype(int) - ours.astype(int)).max() <= 1


@pytest.mark.parametrize('dtype, flag', [(torch.float16, 'supports_half'), (torch.bfloat16, 'supports_bfloat16')])
def test_half_precision_flags_are_measured(descriptor, dtype, flag):
    """A flag set to True means the output in that dtype stays within 45 dB PSNR of fp32 (on a 32 px
    crop: fp16 convolutions are slow on a CPU). Measured with the shipped CBSD432 weights: bf16 within
    45 dB; fp16 NaN (activations of about 5e7 in the MSAB attention overflow it)."""
    x = torch.from_numpy(_photo(32)).permute(2, 0, 1)[None]
    net = descriptor.model.eval()
    with torch.no_grad():
        ref = net(x).clamp(0, 1)
        out = net.to(dtype)(x.to(dtype)).float().clamp(0, 1)
        net.float()
    psnr = 10 * np.log10(1 / max(((out - ref) ** 2).mean().item(), 1e-12))
    assert getattr(descriptor, flag) == (psnr >= 45), psnr
