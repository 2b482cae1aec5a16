"""The input contract chosen from the training images: where the ink lies (a crop keeping the text band), how tall
the glyphs are (a taller input where they would reach the reader too small to read), and whether colour or a
stretched grey shows the text better than plain grey.

captcha_v2 and the demo's captchas reach a 32-px-high reader as glyphs of 19-25 px; a scheme whose 25-px type sits
in a band of a 600x80 canvas reaches it, resized whole, as 7-px glyphs, which it still learns (MIN_GLYPH says what
was measured). The survey looks at a seeded sample of the training split only; what it chooses is written into
the run's contract (labels.json, the checkpoint, the ONNX metadata), so every later stage reads images the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from hardsight.data.io import UnreadableImage, load_image, parallel_map
from hardsight.errors import DataError

SURVEY_IMAGES = 400  # a seeded sample of the training split: enough for the ink's box to settle (to a pixel or two)
HEIGHTS = (32, 48, 64)  # input heights a crnn takes (multiples of 16); more costs time without reading better
# the smallest glyph, in input pixels, the height is raised for. Measured on wide_pale (benchmarks/text_contract.py,
# 4,000 labels): glyphs of 7 px at height 32 learned as fast per step as 14 px at height 64 (validation CER 0.62
# and 0.61 after 20 epochs) at a third of the cost a step, so a 15-minute budget read 0.228 at 32 px, 0.010 at 64
MIN_GLYPH = 6.0
CROP_WORTH = 0.6  # crop only where the box keeps at most this share of the canvas. A small cut buys little: captcha_v2's
# box (76% of it) read 0.979, 0.989, 0.968 (seeds 0-2, benchmarks/text_recipe.py), the whole image 0.989 each time
PALE = 0.35  # median ink contrast (0-1) under which grey is stretched per image
COLOUR_GAIN = 1.5  # colour is used when one channel separates ink this many times better than grey
MIN_INK = 0.05  # a pixel this far from the background (0-1) may be ink; under it, it is the background's grain
BUSY = 0.35  # where more than this share of an image's pixels stands out from its border, the "ink" is a textured
# ground as much as text: the survey cannot tell glyphs from it, and the input stays as it was


@dataclass(frozen=True)
class InkSurvey:
    """What a sample of training images shows of its text."""

    images: int
    size: tuple[int, int] | None  # (width, height) when every image of the set has it, else None
    box: tuple[int, int, int, int] | None  # (x, y, w, h) holding the ink of (almost) every image, on `size`
    glyph_px: float  # median height of a glyph (or of the text line, where glyphs run together), in pixels
    image_px: float  # median height of the images
    grey_contrast: float  # median |grey(ink) - grey(background)| over ink pixels, 0-1
    colour_contrast: float  # the same in the channel that separates them best, 0-1
    ink_share: float  # median share of an image's pixels that is ink
    blank: list[str] = field(default_factory=list)  # images in which no ink was found


@dataclass(frozen=True)
class InputChoice:
    crop: tuple[int, int, int, int] | None
    height: int
    channels: int
    contrast: str | None  # "stretch": each image's range stretched (PIL's autocontrast), or None
    reasons: tuple[str, ...]


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold on values in [0, 1]. By hand: the core dependencies have none (scikit-image is a bench-only
    extra), and it is a histogram and an argmax."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    between = (m0[-1] * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(edges[int(np.argmax(between[:-1])) + 1])


def ink_of(rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(ink mask, grey contrast, best-channel contrast) of one RGB image (H, W, 3) in [0, 1]. The background is
    the median colour of the image's border; ink is what Otsu's threshold sets apart from it."""
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3), rgb[:, :2].reshape(-1, 3),
                             rgb[:, -2:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    diff = np.abs(rgb - background)
    distance = np.sqrt((diff ** 2).mean(-1))
    if distance.max() < MIN_INK:
        return np.zeros(distance.shape, bool), 0.0, 0.0
    mask = distance > max(otsu_threshold(distance), MIN_INK)
    if not mask.any():
        return mask, 0.0, 0.0
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    grey_contrast = float(np.median(np.abs(grey[mask] - background @ np.array([0.299, 0.587, 0.114]))))
    colour_contrast = float(np.median(diff[mask], axis=0).max())
    return mask, grey_contrast, colour_contrast


def mass_span(profile: np.ndarray, tail: float) -> tuple[int, int]:
    """[first, last] index of the profile's mass above its floor (its 25th percentile: what thin lines and specks
    leave everywhere), leaving `tail` of that mass out at each end."""
    above = np.maximum(profile - np.quantile(profile, 0.25), 0)
    if above.sum() <= 0:
        return 0, len(profile) - 1
    cum = np.cumsum(above) / above.sum()
    return int(np.searchsorted(cum, tail)), int(np.searchsorted(cum, 1 - tail))


def glyph_blobs(mask: np.ndarray) -> np.ndarray:
    """Boxes (x0, y0, x1, y1), one a row, of the ink's glyph-like blobs: at least 5 px tall, at most 2.5 times as
    wide as tall and filling a tenth of their box, which thin distractor lines and specks do not."""
    labels, _ = ndimage.label(mask)
    boxes = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if h >= 5 and w <= 2.5 * h and (labels[rows, cols] == index).sum() >= 0.1 * h * w:
            boxes.append((cols.start, rows.start, cols.stop - 1, rows.stop - 1))
    return np.array(boxes, dtype=int).reshape(-1, 4)


def text_box(mask: np.ndarray, blobs: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of one image's text: its glyph blobs' box, or where none looks like a glyph (glyphs joined by
    a line), the rows and columns holding the middle 96% of its ink above what lines leave everywhere."""
    if len(blobs):
        return int(blobs[:, 0].min()), int(blobs[:, 1].min()), int(blobs[:, 2].max()), int(blobs[:, 3].max())
    y0, y1 = mass_span(mask.sum(1).astype(float), 0.02)
    x0, x1 = mass_span(mask.sum(0).astype(float), 0.02)
    return x0, y0, x1, y1


def survey_ink(paths: list[Path], sizes: list[tuple[int, int]], seed: int = 0, one_size: tuple[int, int] | None = None,
               sample: int = SURVEY_IMAGES, workers: int = 4,
               crop: tuple[int, int, int, int] | None = None) -> InkSurvey:
    """Look at up to `sample` of the images (seeded; `sizes` are theirs, after any `crop`) and say where their text
    is and how it shows, inside `crop` where one is given; a box is found only when every image the run will read
    has `one_size`."""
    chosen = sorted(random.Random(seed).sample(range(len(paths)), min(sample, len(paths))))

    def look(i: int):
        try:
            image = load_image(paths[i], "RGB")
        except UnreadableImage:
            return i, None
        if crop is not None:
            image = image.crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))
        mask, grey, colour = ink_of(np.asarray(image, dtype=np.float32) / 255.0)
        if not mask.any():
            return i, ()
        blobs = glyph_blobs(mask)
        box = text_box(mask, blobs)
        glyph = float(np.median(blobs[:, 3] - blobs[:, 1] + 1)) if len(blobs) else float(box[3] - box[1] + 1)
        return i, (box, glyph, grey, colour, float(mask.mean()))

    looked = [(i, found) for i, found in parallel_map(look, chosen, workers) if found is not None]
    blank = [str(paths[i]) for i, found in looked if found == ()]
    seen = [found for _, found in looked if found]
    if not seen:
        raise DataError(f"no ink found in any of the {len(looked)} training images looked at (e.g. {blank[0]}): "
                        "blank or uniform images cannot be read" if blank else "no training image could be decoded")
    boxes = np.array([b for b, *_ in seen])
    glyph, grey, colour, share = (float(np.median([found[k] for found in seen])) for k in (1, 2, 3, 4))
    box, height = None, float(np.median([sizes[i][1] for i in chosen]))
    if one_size is not None:  # the box that holds the text of every image looked at, with a margin for the rest: a
        w, h = one_size  # glyph cut off costs a read, a box a little too big costs nothing
        margin = int(round(0.3 * glyph))
        x0, y0 = (max(0, int(boxes[:, k].min()) - margin) for k in (0, 1))
        x1, y1 = (min(limit - 1, int(boxes[:, k].max()) + margin) for k, limit in ((2, w), (3, h)))
        box = (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    return InkSurvey(len(looked), one_size, box, glyph, height, grey, colour, share, blank)


def choose_input(survey: InkSurvey, height: int | None = None, crop: tuple[int, int, int, int] | None = None,
                 channels: int | None = None, contrast: str | None = None) -> InputChoice:
    """The contract from the survey; what the user gave (not None) wins, and the reasons say what was chosen."""
    reasons = []
    if survey.ink_share > BUSY:
        return InputChoice(crop, height or HEIGHTS[0], channels or 1, contrast, (
            f"the input stays whole at {height or HEIGHTS[0]} px: {survey.ink_share:.0%} of an image's pixels stand "
            "out from its border, so the survey cannot tell the glyphs from a textured ground",))
    if crop is None and survey.box is not None:
        w, h = survey.size
        x, y, bw, bh = survey.box
        if bw * bh <= CROP_WORTH * w * h:
            crop = survey.box
            reasons.append(f"crop {x},{y},{bw},{bh}: the ink of the training images lies in that box of the "
                           f"{w}x{h} canvas ({bw * bh / (w * h):.0%} of it)")
    band = crop[3] if crop is not None else survey.image_px
    if height is None:
        scale = survey.glyph_px / band  # glyph pixels per input pixel of height
        height = next((hh for hh in HEIGHTS if scale * hh >= MIN_GLYPH), HEIGHTS[-1])
        if height != HEIGHTS[0]:
            reasons.append(f"height {height}: glyphs about {survey.glyph_px:.0f} px tall in {band:.0f} px would be "
                           f"{survey.glyph_px * HEIGHTS[0] / band:.0f} px at height {HEIGHTS[0]}")
    if channels is None:
        colourful = survey.colour_contrast >= COLOUR_GAIN * max(survey.grey_contrast, 1e-3)
        channels = 3 if colourful else 1
        if colourful:
            reasons.append(f"3 channels: colour sets the ink apart ({survey.colour_contrast:.2f}) better than grey "
                           f"({survey.grey_contrast:.2f})")
    if contrast is None and survey.grey_contrast < PALE:
        contrast = "stretch"
        reasons.append(f"contrast stretched per image: pale ink (grey contrast {survey.grey_contrast:.2f})")
    return InputChoice(crop, height, channels, contrast, tuple(reasons))
