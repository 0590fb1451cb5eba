"""The inference engine: padding, tiles, self-ensemble, device placement, bf16."""
import pytest
import torch

from gimsanet_arch.inference import engine


class _Shift(torch.nn.Module):
    """A net with a 5x5 receptive field whose output depends on position (tests the un-transform)."""

    def __init__(self, channels=1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(channels, channels, 5, padding=2)

    def forward(self, x):
        return self.conv(x)


def test_padding_and_tiles():
    img = torch.rand(1, 1, 13, 18)
    padded = engine.pad_to_multiple(img, 8)
    assert padded.shape[-2:] == (16, 24) and torch.equal(padded[..., :13, :18], img)
    pointwise = torch.nn.Conv2d(1, 1, 1)  # no spatial context: tiles must reproduce the full result
    with torch.no_grad():
        full = pointwise(img)
        tiled = engine.tiled_forward(lambda t: engine.forward_padded(pointwise, t, 4), img, tile=8, overlap=3)
    torch.testing.assert_close(tiled, full)


def test_pad_too_small_to_reflect_replicates():
    img = torch.rand(1, 1, 3, 2)
    padded = engine.pad_to_multiple(img, 8)
    assert padded.shape[-2:] == (8, 8) and torch.equal(padded[..., 7, 1], img[..., 2, 1])


def test_tile_starts_cover_with_overlap():
    starts = engine.tile_starts(50, 16, 4)
    assert starts[0] == 0 and starts[-1] == 34
    assert all(b - a <= 12 for a, b in zip(starts, starts[1:]))
    assert engine.tile_starts(10, 16, 4) == [0]


def test_tiles_equal_whole_image_when_the_overlap_covers_the_receptive_field():
    net = _Shift().eval()
    img = torch.rand(1, 1, 37, 29)
    whole = engine.run(net, img, dtype='fp32')
    assert engine.blend_margin(8)[0] >= 2  # receptive radius 2
    tiled = engine.run(net, img, tile=16, overlap=8, dtype='fp32')
    assert engine.tile_count(37, 29, 16, 8) > 1
    assert (tiled - whole).abs().max() < 1e-5


def test_one_tile_covering_the_image_is_bit_equal():
    net = _Shift().eval()
    img = torch.rand(1, 1, 21, 17)
    assert torch.equal(engine.run(net, img, tile=32, overlap=8), engine.run(net, img))


def test_self_ensemble_inverts_every_transform():
    img = torch.rand(1, 3, 11, 7)
    # an identity "network" must come back unchanged from all 8 transforms
    assert torch.allclose(engine.self_ensemble(lambda t: t, img), img)
    # a position-dependent one gives the mean of its 8 conjugates, not the plain output
    net = _Shift(3).eval()
    with torch.no_grad():
        plain = net(img)
        ensembled = engine.run(net, img, ensemble=True, dtype='fp32')
    assert ensembled.shape == plain.shape and not torch.allclose(ensembled, plain)
    manual = sum(engine._inverse(net(engine._transform(img, k)), k) for k in range(8)) / 8
    torch.testing.assert_close(ensembled, manual)


def test_uniform_blend_is_plain_average_and_batches_tiles():
    img = torch.rand(1, 1, 20, 20)
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        return x * 2

    out = engine.tiled_forward(forward, img, 12, overlap=4, blend='uniform', batch_size=3)
    torch.testing.assert_close(out, img * 2)
    assert calls == [3, 1]


def test_tiles_move_to_the_device_and_back():
    seen = []

    def forward(x):
        seen.append(x.device.type)
        return x

    img = torch.rand(1, 1, 20, 20)
    out = engine.tiled_forward(forward, img, 12, overlap=4, device='meta' if False else 'cpu')
    assert out.device == img.device and set(seen) == {'cpu'}


def test_bf16_autocast_is_close_to_fp32():
    net = _Shift(3).eval()
    img = torch.rand(1, 3, 24, 24)
    fp32 = engine.run(net, img, dtype='fp32')
    bf16 = engine.run(net, img, dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max() < 0.05 and not torch.equal(bf16, fp32)


@pytest.mark.parametrize('multiple', [1, 8])
def test_forward_padded_crops_back_and_takes_last_stage(multiple):
    img = torch.rand(1, 1, 13, 9)
    out = engine.forward_padded(lambda x: [x * 0, x + 1], img, multiple)
    torch.testing.assert_close(out, img + 1)


def test_too_small_an_overlap_is_not_exact():
    net = _Shift().eval()
    img = torch.rand(1, 1, 37, 29)
    # overlap 4: margin 1 < receptive radius 2, so tile borders show through
    assert engine.blend_margin(4)[0] < 2
    assert (engine.run(net, img, tile=16, overlap=4, dtype='fp32') - engine.run(net, img, dtype='fp32')).abs().max() > 1e-4


def test_neighbour_weights_sum_to_one_across_the_overlap():
    overlap, n = 12, 20
    lead = engine.edge_weights(n, overlap, True, False)
    trail = engine.edge_weights(n, overlap, False, True)
    # window A ends where window B starts + overlap
    torch.testing.assert_close(trail[n - overlap:] + lead[:overlap], torch.ones(overlap, dtype=torch.float64))
    margin, ramp = engine.blend_margin(overlap)
    assert 2 * margin + ramp == overlap and ramp > 0
    assert lead[:margin].eq(0).all() and trail[-margin:].eq(0).all() and lead[margin] > 0


@pytest.mark.parametrize('overlap', [1, 2, 5, 8, 31, 32, 100, 171])
def test_blend_margin_splits_the_overlap(overlap):
    margin, ramp = engine.blend_margin(overlap)
    assert 2 * margin + ramp == overlap and 0 <= ramp <= engine.RAMP_MAX + 1
    assert margin >= overlap / 2 - 9
