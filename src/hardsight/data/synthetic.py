"""Synthetic text CAPTCHAs from the `captcha` package: the demo's data and the tests' data."""

from __future__ import annotations

import random
from pathlib import Path

DEFAULT_CHARSET = "2345678abcdefghkmnprwxyz"  # no look-alikes (0/o, 1/l/i, 9/g)


def make_text_captchas(out: Path, n: int, charset: str = DEFAULT_CHARSET, lengths: tuple[int, int] = (4, 5),
                       height: int = 60, char_width: int = 36, seed: int = 0, fmt: str = "png",
                       fonts: list[str] | None = None) -> list[Path]:
    """Write `n` images named `<text>.<fmt>` (unique texts), width growing with the text length; `fonts` (files)
    replace the package's one font."""
    from captcha.image import ImageCaptcha

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    generators: dict[int, ImageCaptcha] = {}
    seen: set[str] = set()
    paths = []
    state = random.getstate()
    random.seed(seed)  # the captcha package draws its noise from the global generator
    try:
        while len(paths) < n:
            k = rng.randint(*lengths)
            text = "".join(rng.choice(charset) for _ in range(k))
            if text in seen:
                continue
            seen.add(text)
            gen = generators.setdefault(k, ImageCaptcha(width=char_width * k + 24, height=height, fonts=fonts,
                                                        font_sizes=(int(height * 0.7), int(height * 0.8))))
            path = out / f"{text}.{fmt}"
            gen.generate_image(text).save(path)
            paths.append(path)
    finally:
        random.setstate(state)
    return paths
