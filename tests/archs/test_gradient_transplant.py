"""A gradient branch added to no-branch weights leaves the output unchanged and is trainable."""
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.archs.gradient_transplant import add_gradient_branch


@pytest.mark.parametrize('grad_mode, channels', [('official', 3), ('sobel_luma', 3), ('official', 1)])
def test_transplanted_branch_computes_the_same_function(grad_mode, channels):
    torch.manual_seed(0)
    plain = GIMSANet(in_channels=channels, num_feat=8, grad_mode='none').double()
    with torch.no_grad():  # non-zero biases, so a misplaced channel would show
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    branch = GIMSANet(in_channels=channels, num_feat=8, grad_mode=grad_mode).double()
    branch.load_state_dict(add_gradient_branch(plain.state_dict()), strict=True)
    x = torch.rand(2, channels, 23, 30, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(branch(x), plain(x), rtol=0, atol=1e-12)
    # the gradient map matters to the branch network once its new weights move
    branch(x).abs().mean().backward()
    reading = branch.feat_conv1.weight.grad[:, 0]
    assert reading.abs().sum() > 0
    with torch.no_grad():
        branch.feat_conv1.weight[:, 0] += 0.1
        assert not torch.allclose(branch(x), plain(x))


def test_refuses_weights_that_already_have_a_branch():
    state = GIMSANet(num_feat=8, grad_mode='official').state_dict()
    with pytest.raises(ValueError, match='already have a gradient branch'):
        add_gradient_branch(state)
    with pytest.raises(ValueError, match='not a GIMSANet'):
        add_gradient_branch({'conv.weight': torch.zeros(1)})
