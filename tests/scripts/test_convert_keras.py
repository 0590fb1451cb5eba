"""Keras HDF5 -> BasicSR checkpoint converter, checked against a real Keras run of the official model.

The fixture (tests/fixtures/gimsanet_keras, see its README) was made with TensorFlow 2.15 from the official
model-building code: random weights with non-zero biases, the official fixed gradient kernels, and the
Keras output on a 37x41 input.
"""
import importlib.util
import os
import shutil

import h5py
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.archs.keras_convert import (GRAD_H, GRAD_V, KerasWeightsMismatchError, _official_fixed_kernels,
                                               convert_keras_h5, convert_keras_h5_to_checkpoint, keras_weight_order,
                                               read_keras_h5_weights)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'gimsanet_keras')
H5 = os.path.join(FIXTURE, 'gimsanet_color_random.h5')
SCRIPT = os.path.join(ROOT, 'scripts', 'convert_keras_gimsanet.py')


@pytest.fixture(scope='module')
def converted():
    return convert_keras_h5(H5)


def run_model(state, x_nhwc, in_channels=3):
    net = GIMSANet(in_channels=in_channels).eval()
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        return net(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()


def test_reproduces_keras_output(converted):
    x = np.load(os.path.join(FIXTURE, 'input.npy'))
    y = np.load(os.path.join(FIXTURE, 'output.npy'))
    assert x.shape == y.shape == (1, 37, 41, 3)
    out = run_model(converted, x)
    diff = float(np.abs(out - y).max())
    print(f'max abs diff vs Keras: {diff:.3e} (output range {y.min():.2f}..{y.max():.2f})')
    assert diff < 1e-4


def test_order_covers_every_parameter_once(converted):
    net_keys = list(GIMSANet().state_dict())
    assert sorted(converted) == sorted(net_keys)
    order = keras_weight_order()
    names = [name for name, _ in order if name not in (GRAD_H, GRAD_V)]
    assert len(names) == len(set(names)) == len(net_keys) // 2
    assert len(order) == 46  # 45 Conv2D of the official code, h0/Gh/Gv nested: 1 + 2 + 8 + 32 + 3
    n = sum(t.numel() for t in converted.values())
    assert n == 1_282_813


def test_file_layout_is_the_documented_one():
    """The nested head model first, then depth order (MSAB stages interleaved across kernel sizes)."""
    weights = read_keras_h5_weights(H5)
    assert len(weights) == 2 * len(keras_weight_order())
    kernels = [(name, a) for name, a in weights if 'kernel' in name]
    assert kernels[0][0].startswith('model/') and kernels[2][0].startswith('model/')
    assert [a.shape[0] for _, a in kernels[11:15]] == [2, 3, 4, 5]
    # the fixed kernels in the file are exactly the port's official ones
    for (name, array), ref in zip(kernels[1:3], _official_fixed_kernels(3)):
        np.testing.assert_array_equal(array, ref)


def test_cli_writes_basicsr_checkpoint(tmp_path, converted):
    out = tmp_path / 'gimsanet.pth'
    import warm_python  # the script in a process forked from the warm interpreter
    proc = warm_python.run([SCRIPT, H5, str(out)], tmp_path, timeout=300, defaults={})
    assert proc.returncode == 0, proc.stderr
    assert '1,282,813 parameters' in proc.stdout
    ckpt = torch.load(out, weights_only=True)
    assert list(ckpt) == ['params']
    for k, v in converted.items():
        assert torch.equal(ckpt['params'][k], v)


# ----------------------------------------------------------------------------- refusing bad files
def _copy(tmp_path):
    path = tmp_path / 'weights.h5'
    shutil.copy(H5, path)
    return str(path)


def _replace(path, layer_index, weight_index, new_array):
    """Replace the weight_index-th weight of the layer_index-th weighted layer by new_array."""
    with h5py.File(path, 'r+') as f:
        layers = [n.decode() if isinstance(n, bytes) else n for n in f.attrs['layer_names']]
        weighted = [n for n in layers if len(f[n].attrs['weight_names'])]
        group = f[weighted[layer_index]]
        name = group.attrs['weight_names'][weight_index]
        name = name.decode() if isinstance(name, bytes) else name
        del group[name]
        group.create_dataset(name, data=new_array)
        return f'{weighted[layer_index]}/{name}'


def test_wrong_shape_names_first_mismatching_layer(tmp_path):
    path = _copy(tmp_path)
    # 10th weighted layer = 2nd MSAB layer in depth order = the k=3 branch's f conv; make it a 2x2 kernel
    keras_name = _replace(path, 10, 0, np.zeros((2, 2, 49, 49), np.float32))
    with pytest.raises(KerasWeightsMismatchError) as err:
        convert_keras_h5(path)
    msg = str(err.value)
    assert keras_name in msg and 'msab.1.feat.weight' in msg
    assert '(3, 3, 49, 49)' in msg and '(2, 2, 49, 49)' in msg


def test_cli_reports_the_error_and_fails(tmp_path, capsys):
    """In-process (the subprocess path is covered above): one clear line on stderr, exit status 1."""
    spec = importlib.util.spec_from_file_location('convert_keras_gimsanet_cli', SCRIPT)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    path = _copy(tmp_path)
    _replace(path, 1, 1, np.zeros((50,), np.float32))  # f1 bias with 50 instead of 49 entries
    assert cli.main([path, str(tmp_path / 'x.pth')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert 'feat_conv1.bias' in err and 'expected shape (49,), found (50,)' in err
    assert not (tmp_path / 'x.pth').exists()


def test_wrong_channel_count_is_refused():
    with pytest.raises(KerasWeightsMismatchError, match=r'head_conv\.weight: expected shape \(3, 3, 1, 49\), '
                                                        r'found \(3, 3, 3, 49\)'):
        convert_keras_h5(H5, in_channels=1)


def test_changed_fixed_gradient_kernel_is_refused(tmp_path):
    path = _copy(tmp_path)
    sobel_like = np.zeros((3, 3, 3, 1), np.float32)
    sobel_like[:, 0, :, 0], sobel_like[:, 2, :, 0] = -1, 1
    _replace(path, 0, 2, sobel_like)  # nested head model: h0 kernel, h0 bias, Gh kernel, ...
    with pytest.raises(KerasWeightsMismatchError, match='fixed gradient'):
        convert_keras_h5(path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    path = _copy(tmp_path)
    with h5py.File(path, 'r+') as f:
        f.attrs['layer_names'] = f.attrs['layer_names'][:-2]  # drop conv2d_45 (t3) and the last add
    with pytest.raises(KerasWeightsMismatchError, match='ends after 90 weights; expected 92'):
        convert_keras_h5(path)
    foreign = str(tmp_path / 'foreign.h5')
    with h5py.File(foreign, 'w') as f:
        f['w'] = np.zeros(3)
    with pytest.raises(KerasWeightsMismatchError, match='not a Keras 2 HDF5'):
        convert_keras_h5(foreign)


# ----------------------------------------------------------------------------- gray, via a file written here
def write_keras_like_h5(path, state, in_channels):
    """Write ``state`` in the Keras 2 save_weights layout (nested head model, depth order) with h5py only."""
    fixed = dict(zip((GRAD_H, GRAD_V), _official_fixed_kernels(in_channels)))
    order = keras_weight_order(in_channels)
    with h5py.File(path, 'w') as f:
        f.attrs['backend'], f.attrs['keras_version'] = b'tensorflow', b'2.15.0'
        layer_names = [b'input_1', b'model']
        head = f.create_group('model')
        head_names = []
        for i, (module, _) in enumerate(order):
            if module in fixed:
                kernel, bias = fixed[module], np.zeros(1, np.float32)
            else:
                kernel = state[f'{module}.weight'].permute(2, 3, 1, 0).numpy()
                bias = state[f'{module}.bias'].numpy()
            layer = 'conv2d' if i == 0 else f'conv2d_{i}'
            names = [f'{layer}/kernel:0', f'{layer}/bias:0']
            group = head if i < 3 else f.create_group(layer)
            group[names[0]], group[names[1]] = kernel, bias
            if i < 3:
                head_names += names
            else:
                group.attrs['weight_names'] = [n.encode() for n in names]
                layer_names.append(layer.encode())
        head.attrs['weight_names'] = [n.encode() for n in head_names]
        f.create_group('input_1').attrs['weight_names'] = []
        f.attrs['layer_names'] = layer_names


def test_gray_round_trip_through_keras_layout(tmp_path):
    torch.manual_seed(0)
    net = GIMSANet(in_channels=1)
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.05, 0.05)
    path = str(tmp_path / 'gray.h5')
    write_keras_like_h5(path, net.state_dict(), in_channels=1)
    out = str(tmp_path / 'gray.pth')
    state = convert_keras_h5_to_checkpoint(path, out, in_channels=1)
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v), k
    with pytest.raises(KerasWeightsMismatchError):
        convert_keras_h5(path, in_channels=3)
