"""Replacements for two of BasicSR's data functions (installed by the table in
:mod:`gimsanet_arch.compat`; each factory takes the function it replaces)."""


def int_jpeg_quality(original):
    """``degradations.add_jpg_compression`` passes its (float) quality to OpenCV as is; OpenCV 5
    rejects a float JPEG quality. Round it to an int first."""

    def add_jpg_compression(img, quality=90):
        return original(img, int(round(float(quality))))

    return add_jpg_compression


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
