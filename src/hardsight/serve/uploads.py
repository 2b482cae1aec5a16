"""Request bodies -> named image bytes -> decoded PIL images, with every limit checked and named."""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from hardsight.data.io import FORMATS
from hardsight.serve.errors import ApiError


@dataclass(frozen=True)
class Upload:
    """What a request sent: images as (name, bytes), the model asked for, and any other fields."""

    images: list[tuple[str, bytes]]
    model: str | None
    fields: dict[str, Any]

    def check_count(self, max_batch: int) -> None:
        if not self.images:
            raise ApiError(400, "empty batch", "the request holds no image: send a `file` / `files` field or "
                                               "base64 `image` / `images`")
        if len(self.images) > max_batch:
            raise ApiError(413, "batch too large", f"{len(self.images)} images in one request; this server "
                                                   f"takes at most {max_batch} (--max-batch)")


async def read_upload(request: Request, max_batch: int) -> Upload:
    """Multipart (`file`, or several `files`) or JSON (`image` or `images`, base64); anything else is a 415."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        upload = await _read_multipart(request, max_batch)
    elif content_type == "application/json":
        upload = _read_json(await request.body())
    else:
        raise ApiError(415, "unsupported content type",
                       f"got {content_type or 'no content type'!r}; send multipart/form-data with a `file` (or "
                       "several `files`) field, or application/json with base64 `image` or `images`")
    model = request.query_params.get("model") or upload.model
    return Upload(upload.images, model, upload.fields)


async def _read_multipart(request: Request, max_batch: int) -> Upload:
    try:
        form = await request.form(max_files=max_batch + 1, max_fields=32)
    except HTTPException as e:  # starlette turns multipart parse errors into a plain 400
        if "Too many files" in str(e.detail):
            raise ApiError(413, "batch too large",
                           f"more than {max_batch} files in one request (--max-batch)") from None
        raise ApiError(400, "malformed multipart body", e.detail) from None
    try:
        images, fields = [], {}
        for key, value in form.multi_items():
            if key in ("file", "files"):
                if not isinstance(value, UploadFile):
                    raise ApiError(422, "not a file", f"field {key!r} holds text, not a file upload")
                images.append((value.filename or f"image-{len(images)}", await value.read()))
            else:
                fields[key] = value if isinstance(value, str) else f"<file {value.filename}>"
    finally:
        await form.close()
    return Upload(images, fields.pop("model", None), fields)


def _read_json(body: bytes) -> Upload:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed JSON", str(e)) from None
    except RecursionError:  # `[[[...]]]` thousands deep: the decoder gives up, and no request needs it
        raise ApiError(400, "malformed JSON", "nested too deeply; send a flat object like "
                                              '{"images": ["<base64>", ...]}') from None
    if not isinstance(data, dict):
        raise ApiError(422, "wrong JSON shape", 'expected an object like {"images": ["<base64>", ...]}')
    raw = [data["image"]] if data.get("image") is not None else data.get("images", [])
    names = data.get("names") or []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ApiError(422, "wrong JSON shape", "`images` must be a list of base64 strings")
    if not isinstance(names, list) or (names and len(names) != len(raw)):
        raise ApiError(422, "wrong JSON shape", f"`names` must be a list with one name per image ({len(raw)})")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(422, "wrong JSON shape", "`model` must be a string")
    images = [(str(names[i]) if names else f"image-{i}", _b64(s, i)) for i, s in enumerate(raw)]
    fields = {k: v for k, v in data.items() if k not in ("image", "images", "names", "model")}
    return Upload(images, model, fields)


def _b64(text: str, index: int) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URL, as browsers write them
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "not base64", f"image {index} is not valid base64") from None


FORMAT_NAMES = ", ".join(FORMATS)  # said in errors

def decode_image(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Encoded bytes -> a loaded PIL image; the size is checked from the header before any pixel is decoded."""
    if not data:
        raise ApiError(422, "not an image", f"{name}: the file is empty")
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # PIL's own limit, hit by the header alone (e.g. 40000x40000)
        raise ApiError(413, "image too large", f"{name}: its header claims more than {2 * Image.MAX_IMAGE_PIXELS:,} "
                                               f"pixels; the limit is {max_pixels:,} (--max-pixels)") from None
    except Exception:  # PIL raises UnidentifiedImageError, but plugins add their own types
        raise ApiError(422, "not an image", f"{name}: not an image this server decodes ({FORMAT_NAMES})") from None
    if im.width * im.height > max_pixels:
        raise ApiError(413, "image too large", f"{name}: {im.width}x{im.height} = {im.width * im.height:,} pixels, "
                                               f"over the {max_pixels:,} limit (--max-pixels)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # --max-pixels above PIL's limit
        raise ApiError(413, "image too large", f"{name}: {im.width}x{im.height} is over PIL's decompression-bomb "
                                               f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels") from None
    except Exception as e:  # truncated and corrupt files fail inside format plugins with many error types
        raise ApiError(422, "corrupt image", f"{name}: cannot decode ({str(e) or type(e).__name__})") from None
    return im
