"""Seeded text-CAPTCHA styles drawn with PIL: schemes the `captcha` package cannot draw (wide canvases with a small
band of text, pale colours, glyphs spaced far apart, thin distractor lines), for benchmarks and tests.

PIL renders the glyphs (one per character, each rotated on its own); what is written here is only where they go. The
fonts are the ones matplotlib ships (a dependency), so a style draws the same on any machine.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FULL_CHARSET = string.digits + string.ascii_lowercase + string.ascii_uppercase  # the general reader's
WIDE_CHARSET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"  # 0-9a-zA-Z less the look-alikes

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class TextStyle:
    """How every image of one scheme is drawn; the random parts (text, colours, places) come from a seed."""

    canvas: tuple[int, int] = (600, 80)  # width, height in pixels
    font: str = "DejaVuSans-Bold.ttf"  # a file of matplotlib's mpl-data/fonts/ttf
    glyph_px: int = 25  # font size: about the height of a capital
    gap: tuple[int, int] = (30, 60)  # extra pixels between glyphs, drawn per glyph (negative: overlap)
    rotate: float = 10.0  # each glyph turns by up to this many degrees either way
    jitter: int = 4  # each glyph moves up or down by up to this many pixels
    band: tuple[float, float] = (0.3, 0.7)  # where the text line's centre may sit, as a share of the height
    ink: tuple[RGB, ...] = ((150, 180, 230), (230, 160, 170), (160, 210, 170), (220, 190, 120))  # a glyph's colour
    background: RGB = (255, 255, 255)
    lines: tuple[int, int] = (3, 5)  # distractor lines across the canvas, how many
    line_width: int = 1
    line_ink: tuple[RGB, ...] = ((170, 170, 170), (150, 180, 230), (230, 160, 170))
    dots: int = 0  # noise specks
    lengths: tuple[int, int] = (4, 6)
    charset: str = WIDE_CHARSET


def font_path(name: str) -> str:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name}: not one of matplotlib's fonts in {path.parent}")
    return str(path)


def render_text(style: TextStyle, text: str, rng: random.Random) -> Image.Image:
    """One image of `text` in `style` (RGB)."""
    w, h = style.canvas
    image = Image.new("RGB", (w, h), style.background)
    font = ImageFont.truetype(font_path(style.font), style.glyph_px)
    glyphs = []
    for ch in text:
        left, top, right, bottom = font.getbbox(ch)
        tile = Image.new("L", (right - left + 4, bottom - top + 4), 0)
        ImageDraw.Draw(tile).text((2 - left, 2 - top), ch, font=font, fill=255)
        glyphs.append(tile.rotate(rng.uniform(-style.rotate, style.rotate), expand=True, resample=Image.BICUBIC))
    gaps = [rng.randint(*style.gap) for _ in text[1:]]
    total = sum(g.width for g in glyphs) + sum(gaps)
    x = rng.randint(2, max(2, w - total - 2))
    centre = rng.uniform(*style.band) * h
    for i, glyph in enumerate(glyphs):
        y = int(centre - glyph.height / 2 + rng.randint(-style.jitter, style.jitter))
        image.paste(rng.choice(style.ink), (x, y), glyph)
        x += glyph.width + (gaps[i] if i < len(gaps) else 0)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(*style.lines)):
        draw.line([(rng.randint(0, w // 3), rng.randint(0, h)), (rng.randint(2 * w // 3, w), rng.randint(0, h))],
                  fill=rng.choice(style.line_ink), width=style.line_width)
    for _ in range(style.dots):
        px, py = rng.randrange(w), rng.randrange(h)
        draw.point((px, py), fill=rng.choice(style.line_ink))
    return image


def make_styled_captchas(out: Path, style: TextStyle, n: int, seed: int = 0, fmt: str = "png") -> list[Path]:
    """Write `n` images of `style` named `<text>.<fmt>` (unique texts)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    paths = []
    while len(paths) < n:
        text = "".join(rng.choice(style.charset) for _ in range(rng.randint(*style.lengths)))
        if text in seen:
            continue
        seen.add(text)
        path = out / f"{text}.{fmt}"
        render_text(style, text, rng).save(path)
        paths.append(path)
    return paths


FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf",
         "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmss10.ttf", "cmtt10.ttf")
CHARSETS = (WIDE_CHARSET, "0123456789", "abcdefghijkmnopqrstuvwxyz", "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ")


def random_style(seed: int, charset: str | None = None, lengths: tuple[int, int] | None = None) -> TextStyle:
    """One scheme of a broad family (font, canvas shape, glyph size and spacing, ink and background, distractors,
    lengths and charset), drawn from `seed`: the styles a sweep is measured on, each named by its seed. `charset` and
    `lengths` replace what the seed draws (the canvas grows to hold the longest text); the rest is drawn the same."""
    rng = random.Random(seed)
    h = rng.choice((40, 50, 60, 80, 100, 120))
    glyph = int(h * rng.uniform(0.3, 0.75))
    drawn = rng.choice(((4, 4), (4, 6), (5, 5), (5, 8), (6, 6)))
    lengths = lengths or drawn
    gap = rng.choice(((-3, 2), (0, 6), (4, 14), (10, 40)))
    w = max(rng.choice((160, 200, 260, 320, 400, 600)), int(lengths[1] * (0.75 * glyph + gap[1]) + 24))
    dark = rng.random() < 0.15  # light ink on a dark ground
    if dark:
        background = tuple(rng.randint(0, 70) for _ in range(3))
        ink = tuple(tuple(rng.randint(170, 255) for _ in range(3)) for _ in range(rng.randint(1, 4)))
    else:
        background = tuple(rng.randint(215, 255) for _ in range(3))
        lo, hi = rng.choice(((0, 90), (40, 160), (120, 210)))  # dark, middling or pale ink
        ink = tuple(tuple(rng.randint(lo, hi) for _ in range(3)) for _ in range(rng.randint(1, 4)))
    band_half = rng.uniform(0.0, 0.25)
    return TextStyle(canvas=(w, h), font=rng.choice(FONTS), glyph_px=glyph, gap=gap, rotate=rng.choice((0, 8, 15, 25)),
                     jitter=rng.randint(0, max(1, h // 12)), band=(0.5 - band_half, 0.5 + band_half), ink=ink,
                     background=background, lines=rng.choice(((0, 0), (1, 3), (3, 6))), line_width=rng.randint(1, 3),
                     line_ink=ink + tuple(tuple(rng.randint(100, 200) for _ in range(3)) for _ in range(2)),
                     dots=rng.choice((0, 0, 100, 400)), lengths=lengths, charset=charset or rng.choice(CHARSETS))
