"""A small camera pipeline in numpy: turn a clean sRGB image back into linear raw, add sensor noise
there, and develop it again, so that a network trained on the result sees noise shaped like a
camera's (signal-dependent, correlated between neighbours and channels, JPEG-compressed).

Written from the description in Brooks et al., "Unprocessing Images for Learned Raw Denoising"
(CVPR 2019), sections 3.1-3.2: the order of the stages, the smoothstep tone curve, gamma 2.2, the
white-balance gain ranges and the log-linear shot/read noise relation are the paper's. Two choices
are this project's own (docs/real_noise.md says why):

* **Colour matrices.** The paper mixes four measured camera matrices. Here each image gets a random
  sRGB->camera matrix ``(1 - s) I + s P`` (``P`` a random row-stochastic matrix, ``s`` the desaturation
  strength): rows sum to one (white stays white, as for the normalised matrices of the paper), every
  entry is positive (camera primaries are broader than sRGB's) and the matrix is strictly diagonally
  dominant for ``s < 0.5``, so it is always invertible.
* **Demosaicking is perfect on the signal and bilinear on the noise.** The noise is drawn on the
  Bayer sites only and interpolated bilinearly to full resolution (demosaicking is linear, so this is
  exactly the noise part of a bilinear demosaick). The signal itself is not resampled, so the clean
  target is the clean image developed by the same pipeline and a pair differs only by the noise (and
  JPEG); otherwise the network would also learn to undo bilinear demosaicking artefacts that a real
  camera's demosaicker does not make.

Every random draw goes through ``rng``: ``numpy.random`` itself in training (seeded by BasicSR per
worker and saved in training states) or a ``RandomState`` for reproducible validation noise.
"""
import cv2
import numpy as np

# Brooks et al. 2019, section 3.2: log(shot) ~ U[log 1e-4, log 1.2e-2]; log(read) given log(shot)
# is linear with Gaussian scatter. White-balance gains of section 3.1.
SHOT_RANGE = (1e-4, 1.2e-2)
READ_SLOPE, READ_INTERCEPT, READ_SCATTER = 2.18, 1.20, 0.26
RED_GAIN_RANGE, BLUE_GAIN_RANGE = (1.9, 2.4), (1.5, 1.9)
DIGITAL_GAIN_MEAN, DIGITAL_GAIN_STD = 0.8, 0.1  # brightness: the image is divided by N(0.8, 0.1)
GAMMA = 2.2
EPS = 1e-8

# bilinear demosaicking kernels: red/blue sites fill from 2 or 4 neighbours, green from 4
_KERNEL_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
_KERNEL_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4


# ----------------------------------------------------------------------------- per-image camera
def sample_noise_levels(rng, shot_range=SHOT_RANGE, read_slope=READ_SLOPE, read_intercept=READ_INTERCEPT,
                        read_scatter=READ_SCATTER):
    """``(shot, read)``: the variance of the noise at raw level ``x`` is ``shot * x + read``."""
    log_shot = rng.uniform(np.log(shot_range[0]), np.log(shot_range[1]))
    log_read = read_slope * log_shot + read_intercept + rng.normal(0.0, read_scatter)
    return float(np.exp(log_shot)), float(np.exp(log_read))


def sample_rgb2cam(rng, strength_range=(0.15, 0.45)):
    """A random sRGB->camera matrix: ``(1 - s) I + s P`` with ``P`` row-stochastic (see the module doc)."""
    s = rng.uniform(*strength_range)
    mix = rng.uniform(0.0, 1.0, (3, 3))
    mix /= mix.sum(axis=1, keepdims=True)
    return ((1 - s) * np.eye(3) + s * mix).astype(np.float64)


def sample_camera(rng, shot_range=SHOT_RANGE, read_slope=READ_SLOPE, read_intercept=READ_INTERCEPT,
                  read_scatter=READ_SCATTER, strength_range=(0.15, 0.45)):
    """Everything that is fixed for one photo: colour matrix, white balance, brightness, noise levels
    and the phase of the Bayer pattern."""
    rgb2cam = sample_rgb2cam(rng, strength_range)
    red_gain = rng.uniform(*RED_GAIN_RANGE)
    blue_gain = rng.uniform(*BLUE_GAIN_RANGE)
    digital_gain = 1.0 / max(rng.normal(DIGITAL_GAIN_MEAN, DIGITAL_GAIN_STD), 0.1)
    shot, read = sample_noise_levels(rng, shot_range, read_slope, read_intercept, read_scatter)
    phase = (int(rng.randint(0, 2)), int(rng.randint(0, 2)))
    return {'rgb2cam': rgb2cam, 'cam2rgb': np.linalg.inv(rgb2cam),
            'gains': digital_gain * np.array([red_gain, 1.0, blue_gain]),
            'shot': shot, 'read': read, 'bayer_phase': phase}


# ----------------------------------------------------------------------------- the stages
def inverse_tone(srgb):
    """Inverse of the smoothstep tone curve ``y = 3x^2 - 2x^3`` on [0, 1]."""
    y = np.clip(srgb, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def tone(x):
    return 3.0 * x ** 2 - 2.0 * x ** 3


def unprocess(srgb, camera):
    """Clean sRGB (HxWx3 float in [0, 1], RGB) -> linear camera raw at full resolution, in [0, 1]
    (sensor values above 1 saturate, as a real sensor does)."""
    linear = np.maximum(inverse_tone(srgb), EPS) ** GAMMA
    cam = linear @ camera['rgb2cam'].T
    return np.clip(cam / camera['gains'], 0.0, 1.0)


def process(raw, camera):
    """Linear camera raw (HxWx3) -> sRGB in [0, 1]: white balance and brightness, colour matrix,
    gamma, tone curve, with the clipping a camera applies after the gains and the matrix."""
    cam = np.clip(raw * camera['gains'], 0.0, 1.0)
    linear = np.clip(cam @ camera['cam2rgb'].T, 0.0, 1.0)
    return tone(np.maximum(linear, EPS) ** (1.0 / GAMMA))


def bayer_masks(height, width, phase=(0, 0)):
    """HxWx3 boolean masks of the R, G, B sites of an RGGB pattern shifted by ``phase`` (row, col)."""
    rows = (np.arange(height)[:, None] + phase[0]) % 2
    cols = (np.arange(width)[None, :] + phase[1]) % 2
    red = (rows == 0) & (cols == 0)
    blue = (rows == 1) & (cols == 1)
    return np.stack([red, ~(red | blue), blue], axis=2)


def raw_noise(raw, camera, rng):
    """Heteroscedastic sensor noise for ``raw``, drawn on the Bayer sites and demosaicked bilinearly:
    HxWx3. At a site the variance is ``shot * x + read`` with ``x`` the clean raw value of that site;
    between sites the noise is interpolated from neighbouring sites (so neighbours and channels
    correlate, and the variance drops there, as after a real demosaick)."""
    h, w = raw.shape[:2]
    masks = bayer_masks(h, w, camera['bayer_phase'])
    std = np.sqrt(camera['shot'] * raw + camera['read'])
    sparse = (rng.standard_normal(raw.shape) * std * masks).astype(np.float32)
    out = np.empty_like(sparse)
    for c, kernel in enumerate((_KERNEL_RB, _KERNEL_G, _KERNEL_RB)):
        # BORDER_REFLECT_101 mirrors about the edge pixel, which keeps the Bayer parity at the border
        out[:, :, c] = cv2.filter2D(sparse[:, :, c], -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return out


def jpeg_round_trip(img, quality):
    """HxWx3 float RGB in [0, 1] -> quantised to 8 bits, JPEG at ``quality`` (4:2:0, as cameras
    save), decoded back to float."""
    bgr = np.clip(np.rint(img[:, :, ::-1] * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError('OpenCV could not JPEG-encode a training patch')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0


def quantize8(img):
    return (np.clip(np.rint(img * 255.0), 0, 255) / 255.0).astype(np.float32)


# ----------------------------------------------------------------------------- whole pairs
def camera_pair(srgb, camera, rng):
    """``(noisy, clean)`` sRGB float32 images from a clean sRGB image: the clean one developed
    without noise, the noisy one with raw noise. Neither is quantised or compressed here."""
    raw = unprocess(srgb.astype(np.float64), camera)
    clean = process(raw, camera)
    noisy = process(raw + raw_noise(raw, camera, rng), camera)
    return noisy.astype(np.float32), clean.astype(np.float32)


def srgb_pair(srgb, shot, read, rng):
    """The simpler model of the ablation: independent Gaussian noise added in sRGB with variance
    ``shot * x + read`` (x the sRGB value), then clipped to [0, 1] as a saved photo is."""
    clean = srgb.astype(np.float32)
    std = np.sqrt(shot * np.clip(clean, 0.0, 1.0) + read)
    noisy = np.clip(clean + rng.standard_normal(clean.shape) * std, 0.0, 1.0)
    return noisy.astype(np.float32), clean
