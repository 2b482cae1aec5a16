"""Zero-shot readers an attacker can use without a single label, scored beside the trained curve.

`general` is hardsight's shipped general reader (runs/shipped.py), restricted to the charset the same way.
ddddocr is the off-the-shelf CAPTCHA OCR of the field. Restricted to the scheme's charset (its `set_ranges`,
then the arg-max over the allowed characters and the blank, then CTC's collapse), it is as good as it gets
without training; unrestricted, it reads characters the scheme never uses.
"""

from __future__ import annotations

from typing import Callable

Reader = Callable[[bytes], str]  # encoded image -> text


def ddddocr_reader(charset: str) -> Reader:
    """ddddocr's bundled model restricted to `charset`; ImportError when ddddocr is not installed."""
    import ddddocr
    import numpy as np

    ocr = ddddocr.DdddOcr(show_ad=False)
    ocr.set_ranges(charset)
    full = ocr.ocr_engine.charset_manager.get_charset()
    allowed = np.asarray([0] + [i for i, c in enumerate(full) if c and c in charset])

    def read(data: bytes) -> str:
        out = ocr.classification(data, probability=True)
        probs = np.asarray(out["probabilities"]).reshape(-1, len(full))
        chars, prev = [], 0
        for k in allowed[probs[:, allowed].argmax(axis=1)]:
            if k != prev and k != 0:
                chars.append(full[k])
            prev = k
        return "".join(chars)

    return read


def general_reader(charset: str) -> Reader:
    """The shipped general reader, its arg-max taken over the blank and the characters of `charset` it reads."""
    import io

    import torch
    from PIL import Image

    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import load_module
    from hardsight.tasks.decoding import ctc_greedy
    from hardsight.transforms import text_preprocess

    module = load_module(RunFolder.open("general"))
    known = module.codec
    allowed = torch.tensor([0] + [i + 1 for i, c in enumerate(known.charset) if c in charset])
    mode = "L" if module.spec.channels == 1 else "RGB"

    def read(data: bytes) -> str:
        x = text_preprocess(Image.open(io.BytesIO(data)).convert(mode), module.spec).float().div(255)[None]
        with torch.no_grad():
            log_probs = module(x)[..., allowed]
        (indices, _), = ctc_greedy(log_probs)
        return known.decode([int(allowed[i]) for i in indices])

    return read


def general_version() -> str:
    from hardsight import __version__

    return f"shipped with hardsight {__version__}"


def ddddocr_version() -> str:
    from importlib.metadata import version

    return version("ddddocr")


# name -> (reader factory over the scheme's charset, version): the zero-shot text baselines assess tries
TEXT_BASELINES: dict[str, tuple[Callable[[str], Reader], Callable[[], str]]] = {
    "general": (general_reader, general_version),
    "ddddocr": (ddddocr_reader, ddddocr_version),
}
