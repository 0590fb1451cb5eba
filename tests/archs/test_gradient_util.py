"""Fixed gradient operators: values on hand-made patterns, derived by hand from
docs/gimsanet-spec.md#gradient-branch."""
import math

import pytest
import torch

from gimsanet_arch.archs.gradient_util import (GRAD_MODES, GradientMap, gradient_kernels, gradient_map,
                                               image_gradients, official_color_kernels, sobel_kernels)

H, W = 9, 11


def x_ramp(c=3, slope=1.0):
    return (slope * torch.arange(W, dtype=torch.float32)).view(1, 1, 1, W).expand(1, c, H, W).clone()


def y_ramp(c=3, slope=1.0):
    return (slope * torch.arange(H, dtype=torch.float32)).view(1, 1, H, 1).expand(1, c, H, W).clone()


def interior(t):
    return t[..., 1:-1, 1:-1]


def assert_all(t, value):
    torch.testing.assert_close(t, torch.full_like(t, value), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- kernels
def test_sobel_kernels_are_textbook():
    sx, sy = sobel_kernels()
    assert sx.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert sy.tolist() == sx.t().tolist()


def test_official_kernels_follow_keras_layout():
    """W[0,c,i,j]: Gh = s_c * t_i, Gv = t_c * s_i with s = (-1,0,1), t = (1,2,1)
    (docs/gimsanet-spec.md#the-official-colour-kernels-as-keras-lays-them-out)."""
    gh, gv = official_color_kernels()
    s, t = (-1, 0, 1), (1, 2, 1)
    for c in range(3):
        for i in range(3):
            for j in range(3):
                assert gh[0, c, i, j] == s[c] * t[i]
                assert gv[0, c, i, j] == t[c] * s[i]
    # the official nested list, indexed as Keras does: f[i][j][c][0]
    hfilter = [[[[-1], [0], [1]]] * 3, [[[-2], [0], [2]]] * 3, [[[-1], [0], [1]]] * 3]
    keras_h = torch.tensor(hfilter, dtype=torch.float32)  # (3, 3, 3, 1) = (kh, kw, cin, cout)
    torch.testing.assert_close(keras_h.permute(3, 2, 0, 1), gh, rtol=0, atol=0)


def test_kernel_shapes_and_groups():
    assert gradient_kernels(3, 'official')[0].shape == (2, 3, 3, 3)
    assert gradient_kernels(3, 'sobel_luma')[0].shape == (2, 3, 3, 3)
    w, groups = gradient_kernels(3, 'sobel_color')
    assert w.shape == (6, 1, 3, 3) and groups == 3
    for mode in GRAD_MODES:
        w, _ = gradient_kernels(1, mode)
        assert w.shape == (2, 1, 3, 3)
    with pytest.raises(ValueError):
        gradient_kernels(3, 'prewitt')
    with pytest.raises(ValueError):
        gradient_kernels(4, 'official')


# ----------------------------------------------------------------------------- official colour map
def test_official_x_ramp_has_no_response():
    """No d/dx component at all: a gray x-ramp gives 0 in the interior."""
    assert_all(interior(gradient_map(x_ramp(), 'official')), 0.0)


def test_official_y_ramp_gives_24():
    """Gv = Prewitt-y of (ch0 + 2 ch1 + ch2): slope 1 -> 3 columns * 2 * 4 = 24."""
    assert_all(interior(gradient_map(y_ramp(), 'official')), 24.0)
    assert_all(interior(gradient_map(y_ramp(slope=0.5), 'official')), 12.0)


def test_official_flat_gray_is_zero_and_colour_difference_is_not():
    assert_all(interior(gradient_map(torch.full((1, 3, H, W), 0.7), 'official')), 0.0)
    blue = torch.zeros(1, 3, H, W)
    blue[:, 2] = 1.0  # only ch2 = 1: Gh = sum_i t_i * 3 columns = 12, Gv = 0
    assert_all(interior(gradient_map(blue, 'official')), 12.0)
    green = torch.zeros(1, 3, H, W)
    green[:, 1] = 1.0  # ch1 has s_c = 0 in Gh, flat in Gv: nothing
    assert_all(interior(gradient_map(green, 'official')), 0.0)


def test_official_zero_padding_at_the_border():
    """Faithful Keras zero padding: only ch2 = 1, top-left corner sees a 2x2 window.

    Gh = (t_1 + t_2) * 2 columns = 6; Gv = t_2 * (s_1 + s_2) * 2 columns = 2; |g| = sqrt(40).
    """
    blue = torch.zeros(1, 3, H, W)
    blue[:, 2] = 1.0
    g = gradient_map(blue, 'official')
    assert g[0, 0, 0, 0].item() == pytest.approx(math.sqrt(40.0), abs=1e-5)
    assert g[0, 0, 4, 0].item() == pytest.approx(8.0, abs=1e-5)  # left edge: Gh = 4 * 2 = 8, Gv = 0


def test_official_is_invariant_to_rgb_bgr():
    x = torch.rand(2, 3, H, W)
    torch.testing.assert_close(gradient_map(x, 'official'), gradient_map(x.flip(1), 'official'))


def test_official_on_noise_matches_spec_statistics():
    """Unit-variance i.i.d. noise: Gh and Gv each have std 6 (sum of squared weights 2*6*3 = 36); mean |g| ~7.5."""
    torch.manual_seed(0)
    g = interior(gradient_map(torch.randn(1, 3, 200, 200), 'official'))
    assert g.mean().item() == pytest.approx(7.5, rel=0.03)


# ----------------------------------------------------------------------------- gray = true Sobel
@pytest.mark.parametrize('mode', GRAD_MODES)
def test_gray_is_true_sobel(mode):
    assert_all(interior(gradient_map(x_ramp(c=1), mode)), 8.0)
    assert_all(interior(gradient_map(y_ramp(c=1), mode)), 8.0)
    assert_all(gradient_map(torch.full((1, 1, H, W), 0.3), mode)[..., 1:-1, 1:-1], 0.0)
    step = torch.zeros(1, 1, H, W)
    step[..., 5:] = 1.0  # unit step between columns 4 and 5: Sobel sees 1 + 2 + 1 = 4 on both sides
    g = interior(gradient_map(step, mode))[0, 0]
    assert_all(g[:, 3:5], 4.0)  # columns 4 and 5 of the full map
    assert_all(g[:, :3], 0.0)
    assert_all(g[:, 5:], 0.0)


# ----------------------------------------------------------------------------- corrected colour maps
def test_sobel_luma():
    """a = (1,2,1)/4 sums to 1: a luma ramp/step gives plain Sobel values; ch0/ch2 weigh 1/4, ch1 1/2."""
    assert_all(interior(gradient_map(x_ramp(), 'sobel_luma')), 8.0)
    assert_all(interior(gradient_map(y_ramp(), 'sobel_luma')), 8.0)
    blue = torch.zeros(1, 3, H, W)
    blue[:, 2] = 1.0
    assert_all(interior(gradient_map(blue, 'sobel_luma')), 0.0)  # no colour difference term
    step = torch.zeros(1, 3, H, W)
    step[:, 1, :, 5:] = 1.0  # green-only step: 4 * 1/2
    g = interior(gradient_map(step, 'sobel_luma'))[0, 0]
    assert_all(g[:, 3:5], 2.0)
    step = torch.zeros(1, 3, H, W)
    step[:, :, :, 5:] = 1.0  # unit gray step: plain Sobel 4
    assert_all(interior(gradient_map(step, 'sobel_luma'))[0, 0, :, 3:5], 4.0)


def test_sobel_color():
    """sqrt of the sum over channels and both directions of squared per-channel Sobel responses."""
    assert_all(interior(gradient_map(x_ramp(), 'sobel_color')), 8.0 * math.sqrt(3.0))
    step = torch.zeros(1, 3, H, W)
    step[:, 0, :, 5:] = 1.0  # one channel only: plain Sobel 4
    g = interior(gradient_map(step, 'sobel_color'))[0, 0]
    assert_all(g[:, 3:5], 4.0)
    assert_all(g[:, :3], 0.0)
    blue = torch.zeros(1, 3, H, W)
    blue[:, 2] = 1.0
    assert_all(interior(gradient_map(blue, 'sobel_color')), 0.0)


# ----------------------------------------------------------------------------- module, dtype, eps
@pytest.mark.parametrize('mode', GRAD_MODES)
@pytest.mark.parametrize('c', [1, 3])
def test_module_matches_function_and_holds_no_state(mode, c):
    m = GradientMap(c, mode)
    x = torch.rand(2, c, 7, 10)
    torch.testing.assert_close(m(x), gradient_map(x, mode))
    assert m(x).shape == (2, 1, 7, 10)
    assert list(m.parameters()) == []
    assert m.state_dict() == {}  # non-persistent buffer
    assert [name for name, _ in m.named_buffers()] == ['weight']


def test_module_follows_dtype():
    m = GradientMap(3, 'official').to(torch.bfloat16)
    assert m.weight.dtype == torch.bfloat16
    out = m(y_ramp().to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert interior(out).float().unique().tolist() == [24.0]


def test_eps_makes_flat_regions_differentiable():
    x = torch.full((1, 3, 5, 5), 0.5, requires_grad=True)
    gradient_map(x, 'official').sum().backward()
    assert torch.isnan(x.grad).any()  # sqrt'(0) = inf; this is why the arch adds eps when needed
    x.grad = None
    gradient_map(x, 'official', eps=1e-12).sum().backward()
    assert torch.isfinite(x.grad).all()
    # and eps is negligible for the values
    y = y_ramp()
    assert (gradient_map(y, 'official', eps=1e-12) - gradient_map(y, 'official')).abs().max() < 1e-5


# ----------------------------------------------------------------------------- image_gradients (losses)
@pytest.mark.parametrize('operator', ['sobel', 'central'])
def test_image_gradients_shapes_and_constant_image(operator):
    x = torch.full((2, 3, 6, 7), 0.4)
    gx, gy = image_gradients(x, operator)
    assert gx.shape == gy.shape == x.shape
    # replicate padding: no border edges (only float rounding of 0.4 * (1 + 2 + 1 - 1 - 2 - 1))
    assert gx.abs().max() < 1e-6 and gy.abs().max() < 1e-6


def test_image_gradients_values_and_replicate_border():
    gx, gy = image_gradients(x_ramp(c=2), 'sobel')
    assert_all(gx[..., 1:-1], 8.0)
    assert_all(gx[..., 0], 4.0)  # replicate: f[-1] = f[0], so half the central slope
    assert_all(gx[..., -1], 4.0)
    assert_all(gy, 0.0)
    gx, gy = image_gradients(y_ramp(c=2), 'central')
    assert_all(gy[..., 1:-1, :], 1.0)
    assert_all(gy[..., 0, :], 0.5)
    assert_all(gx, 0.0)


def test_image_gradients_per_channel_and_direction():
    x = torch.zeros(1, 2, 5, 6)
    x[:, 1, :, 3:] = 1.0  # step along x in channel 1 only
    gx, gy = image_gradients(x, 'sobel')
    assert gx[:, 0].abs().max() == 0 and gy.abs().max() == 0
    assert gx[0, 1, 2].tolist() == [0, 0, 4, 4, 0, 0]


def test_image_gradients_is_differentiable():
    x = torch.rand(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    for op in ('sobel', 'central'):
        assert torch.autograd.gradcheck(lambda t: image_gradients(t, op), (x,), fast_mode=True)


def test_image_gradients_rejects_bad_input():
    with pytest.raises(ValueError):
        image_gradients(torch.rand(1, 1, 4, 4), 'laplace')
    with pytest.raises(ValueError):
        image_gradients(torch.rand(4, 4), 'sobel')
