"""arch_info: padding multiple, input-channel argument and tiny configuration of every arch."""
import pytest
import torch
from torch import nn

from basicsr.archs import build_network
from gimsanet_arch.archs.arch_info import ArchInfo, arch_info, in_channels, network_in_channels, pad_multiple
from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.archs.nafnet_arch import NAFNet, NAFNetLocal
from gimsanet_arch.archs.restormer_arch import Restormer


@pytest.mark.parametrize('cls,multiple,arg', [(GIMSANet, 1, 'in_channels'), (Restormer, 8, 'inp_channels'),
                                              (NAFNet, 1, 'img_channel'), (NAFNetLocal, 1, 'img_channel')])
def test_plugin_archs_answer_from_their_class_attributes(cls, multiple, arg):
    by_class = arch_info(cls)
    assert by_class == ArchInfo(cls.__name__, multiple, arg, cls.tiny_config)
    assert arch_info(cls.__name__) == by_class
    assert arch_info(cls(**cls.tiny_config)) == by_class
    assert pad_multiple(cls) == pad_multiple(cls.__name__) == multiple


def test_tiny_config_is_a_copy():
    arch_info('Restormer').tiny_config['num_blocks'].append(99)
    assert Restormer.tiny_config['num_blocks'] == [1, 1, 1, 1]


def test_nafnet_local_tiny_net_slides_its_local_pools():
    """The tiny train_size makes TLC differ from global pooling on the odd test size (padded to 32)."""
    torch.manual_seed(0)
    local = NAFNetLocal(**NAFNetLocal.tiny_config)
    glob = NAFNet(**NAFNet.tiny_config).eval()
    for name, p in glob.named_parameters():  # non-zero beta/gamma so the blocks matter
        if name.endswith(('beta', 'gamma')):
            nn.init.normal_(p, std=0.5)
    local.load_state_dict(glob.state_dict())
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert not torch.allclose(local(x), glob(x), atol=1e-4)


def test_basicsr_archs_from_the_table():
    assert arch_info('RIDNet') == ArchInfo('RIDNet', 1, 'in_channels', {'mid_channels': 16, 'num_block': 1})
    swinir = arch_info('SwinIR')
    assert swinir.in_channels_arg == 'in_chans'
    assert swinir.tiny_config == {'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'img_size': 16}
    assert swinir.pad_multiple == 7  # the constructor's default window: SwinIR does not pad


def test_swinir_instance_pads_to_its_own_window():
    net = build_network({'type': 'SwinIR', 'window_size': 8, 'upscale': 1, **arch_info('SwinIR').tiny_config})
    assert pad_multiple(net) == 8
    with pytest.raises(RuntimeError):  # the reason it needs padding
        net(torch.rand(1, 3, 19, 23))
    assert net(torch.rand(1, 3, 16, 24)).shape == (1, 3, 16, 24)


def test_unknown_archs_get_safe_guesses():
    class Plain(nn.Module):
        def __init__(self, num_feat=4, num_in_ch=1):
            super().__init__()

    class Wrapped(Plain):  # the argument is found on the parent's constructor
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    class NoChannels(nn.Module):
        pass

    assert arch_info(Plain) == ArchInfo('Plain', 1, 'num_in_ch', {})
    assert arch_info(Wrapped()).in_channels_arg == 'num_in_ch'
    assert arch_info(NoChannels).in_channels_arg is None
    assert arch_info('EDSR') == ArchInfo('EDSR', 1, 'num_in_ch', {})  # a registered BasicSR arch


@pytest.mark.parametrize('network_opt,channels', [
    ({'type': 'GIMSANet', 'in_channels': 1}, 1),
    ({'type': 'GIMSANet'}, 3),  # the constructor default
    ({'type': 'Restormer', 'inp_channels': 1, 'in_channels': 6}, 1),  # only the arch's own argument counts
    ({'type': 'NAFNetLocal'}, 3),  # default from NAFNet's constructor (NAFNetLocal takes **kwargs)
    ({'type': 'NAFNet', 'img_channel': 1}, 1),
    ({'type': 'SwinIR', 'in_chans': 1}, 1),
    ({'type': 'RIDNet', 'in_channels': 1}, 1),
    ({'type': 'RIDNet'}, 3),  # a required argument: no default, so colour
    ({'type': 'EDSR', 'num_in_ch': 1}, 1),
])
def test_in_channels_of_network_options(network_opt, channels):
    assert in_channels(network_opt) == channels


@pytest.mark.parametrize('network_opt', [
    {'type': 'GIMSANet', 'in_channels': 1, 'num_feat': 4},
    {'type': 'Restormer', 'inp_channels': 1, 'out_channels': 1, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
     'num_refinement_blocks': 1},
    {'type': 'RIDNet', 'in_channels': 1, 'out_channels': 1, 'mid_channels': 16, 'num_block': 1},
])
def test_in_channels_of_a_built_network(network_opt):
    """From its arguments, else what the instance keeps, else the constructor default; never from the
    first convolution (RIDNet's takes 3 channels for a gray network)."""
    net = build_network(dict(network_opt))
    args = {k: v for k, v in network_opt.items() if k != 'type'}
    assert network_in_channels(net, args) == in_channels(network_opt) == 1
    if network_opt['type'] == 'GIMSANet':  # it keeps in_channels: no arguments needed
        assert network_in_channels(net) == 1
    else:  # no arguments: the constructor default
        assert network_in_channels(net) == 3
