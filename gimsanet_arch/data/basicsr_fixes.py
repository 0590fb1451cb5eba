"""A replacement for BasicSR's paired dataset set-up (installed by the table in
:mod:`gimsanet_arch.compat`; the factory takes the function it replaces)."""


def accept_use_flip(original):
    """``PairedImageDataset`` reads ``opt['use_hflip']`` and ``opt['use_rot']`` (KeyError when
    absent); NAFNet's official option files, which use this type, spell them ``use_flip`` /
    ``use_rot``. Accept NAFNet's spelling (``use_hflip`` wins when both are given)."""

    def __init__(self, opt):
        if opt.get('phase') == 'train':
            opt.setdefault('use_hflip', opt.get('use_flip', False))
            opt.setdefault('use_rot', False)
        original(self, opt)

    return __init__
