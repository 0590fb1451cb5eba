"""GIMSANet for spandrel (chaiNNer, ComfyUI, traiNNer-redux and other tools that load models with it).

spandrel adds no architecture without official PyTorch weights, so this package brings the adapter
itself, the way ``spandrel_extra_arches`` does (``pip install gimsanet_arch[spandrel]``)::

    import gimsanet_arch.spandrel_support
    gimsanet_arch.spandrel_support.install()
    model = spandrel.ModelLoader().load_from_file('GIMSANet_BlindColor_CBSD432.safetensors')

The architecture and its arguments are read from the weights (:mod:`gimsanet_arch.archs.detect`);
the descriptor says: purpose Restoration, scale 1, any input size (no padding needed), tiling
supported, and fp16 / bf16 support as measured by ``tests/test_spandrel_support.py`` against fp32.
"""
from gimsanet_arch.archs.detect import SIGNATURES, detect


def _architecture_class():
    from spandrel import Architecture, ImageModelDescriptor, ModelTiling, SizeRequirements
    from spandrel.util import KeyCondition

    from gimsanet_arch.archs.gimsanet_arch import GIMSANet

    class GIMSANetArch(Architecture[GIMSANet]):
        def __init__(self):
            super().__init__(id='GIMSANet', detect=KeyCondition.has_all(*SIGNATURES['GIMSANet']))

        def load(self, state_dict):
            _, args = detect(state_dict)
            model = GIMSANet(**args)
            model.load_state_dict(state_dict, strict=True)
            tags = [f'{args["num_feat"]}nf', f'grad {args["grad_mode"]}',
                    'msab ' + '/'.join(map(str, args['msab_kernels']))]
            return ImageModelDescriptor(
                model, state_dict, architecture=self, purpose='Restoration', tags=tags,
                # fp16: no. Trained weights (the shipped CBSD432 set) reach activations of about 5e7 inside
                # the MSAB attention, beyond fp16's 65504, and give NaN; bf16 has fp32's range (see the test)
                supports_half=False, supports_bfloat16=True,
                scale=1, input_channels=args['in_channels'], output_channels=args.get('out_channels', args['in_channels']),
                size_requirements=SizeRequirements(),  # full-resolution convs: any height and width
                tiling=ModelTiling.SUPPORTED)

    return GIMSANetArch


def install(registry=None):
    """Add GIMSANet to spandrel's registry (``MAIN_REGISTRY`` by default); a second call changes nothing.
    Returns the entries added."""
    try:
        from spandrel import MAIN_REGISTRY, ArchSupport
    except ImportError:
        raise ImportError('spandrel is not installed: pip install "gimsanet_arch[spandrel]"') from None
    registry = MAIN_REGISTRY if registry is None else registry
    return registry.add(ArchSupport.from_architecture(_architecture_class()()), ignore_duplicates=True)
