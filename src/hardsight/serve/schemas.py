"""Response and request shapes, as pydantic models, so /docs shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TextResult(BaseModel):
    file: str = Field(description="Upload file name, or the name given in JSON, or image-N")
    text: str
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the decoded text")


class Answer(BaseModel):
    """What every image route answers besides its `results`."""

    model: str
    task: str
    engine: str
    ms: float = Field(description="Server time for the whole request, in milliseconds")


class ReadResponse(Answer):
    results: list[TextResult]


class Ranked(BaseModel):
    label: str
    probability: float


class ClassResult(BaseModel):
    file: str = Field(description="Upload file name, or the name given in JSON, or image-N")
    label: str = Field(description="The most probable class")
    probabilities: dict[str, float]
    labels: list[str] = Field(description="Classes over their threshold (multi-label runs), else the top class")
    top_k: list[Ranked]
    error: str | None = Field(None, description="Only when the image could not be prepared; the rest is then empty")


class ClassifyResponse(Answer):
    results: list[ClassResult]


class GridResult(BaseModel):
    file: str = Field(description="Upload file name, or the name given in JSON, or image-N")
    target: str = Field(description="The class the target named, as the run spells it")
    rows: int
    cols: int
    selected: list[int] = Field(description="0-based row-major indices of the chosen cells")
    positions: list[tuple[int, int]] = Field(description="1-based (row, col) of each chosen cell")
    scores: list[float] = Field(description="Target probability of every cell, row-major")
    threshold: float
    boxes: list[tuple[int, int, int, int]] = Field(description="(left, top, right, bottom) of each cell in the "
                                                               "image, row-major")


class SolveResponse(Answer):
    results: list[GridResult]


class ModelInfo(BaseModel, extra="allow"):
    name: str
    task: str
    route: str
    engine: str
    run: str


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: dict[str, Any]


class CardMetric(BaseModel):
    key: str = Field(description="The metric's name in test_metrics.json and `hardsight evaluate --json`")
    name: str
    value: float
    percent: bool = Field(description="Shown as a percentage (else as a number)")
    low: float | None = Field(None, description="95% Wilson interval over the test images, for rates of images")
    high: float | None = None
    n: int | None = Field(None, description="Test images the rate is over")


class CardPair(BaseModel):
    true: str
    predicted: str
    count: int


class CardClass(BaseModel):
    name: str
    precision: float
    recall: float
    low: float = Field(description="95% Wilson interval of the recall")
    high: float
    f1: float
    support: int


class CardPrediction(BaseModel):
    file: str = Field(description="The test image's file name")
    truth: str
    prediction: str
    confidence: float | None
    correct: bool
    image: str | None = Field(description="The image as the model saw it, a data URI from the run folder")


class CardTraining(BaseModel):
    data: str | None = None
    train: int | None = Field(None, description="Images in each split (split.json)")
    val: int | None = None
    test: int | None = None
    trained: str | None = Field(None, description="When training finished, ISO 8601")
    epochs: int | None = None
    minutes: float | None = None
    stopped_by: str | None = None


class ModelCard(BaseModel):
    """What a served model is and how it did on its test split, from its run folder's own files."""

    name: str
    task: str
    model: str | None
    run: str
    engine: str
    input: dict[str, Any] = Field(description="The input contract: text: height, width, channels, crop; "
                                              "image: size and classes")
    training: CardTraining
    metrics: list[CardMetric] = Field(description="The test split's metrics (best checkpoint)")
    per_class: list[CardClass] = Field(description="Image runs: precision, recall and F1 per class")
    confusions: list[CardPair] = Field(description="Most confused pairs: characters (text), classes (image)")
    curves: str | None = Field(description="plots/curves.png as a data URI")
    predictions: list[CardPrediction] = Field(description="Test images with their predictions, errors first")
    missing: list[str] = Field(description="Files of the run folder the card wanted and could not read")


class Health(BaseModel):
    status: str
    models: int


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class ImagesJSON(BaseModel):
    """The JSON form of a request: base64 images (data URLs are fine)."""

    image: str | None = Field(None, description="One base64 image")
    images: list[str] | None = Field(None, description="Several base64 images")
    names: list[str] | None = Field(None, description="One name per image, echoed back as `file`")
    model: str | None = Field(None, description="Model name from GET /v1/models (default: the first of the task)")


def image_request_body() -> dict[str, Any]:
    """OpenAPI requestBody: multipart upload or base64 JSON (the route reads either itself)."""
    binary = {"type": "string", "format": "binary"}
    multipart = {"type": "object", "properties": {
        "file": binary, "files": {"type": "array", "items": binary},
        "model": {"type": "string", "description": "Model name (default: the first of the task)"}}}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": multipart},
        "application/json": {"schema": ImagesJSON.model_json_schema()}}}}


ERRORS = {status: {"model": ErrorBody, "description": why} for status, why in [
    (400, "empty batch, malformed body, wrong task for the model, missing or unknown target, bad or over-8x8 grid, "
          "bad threshold, unknown Host header"),
    (401, "missing or wrong API key (a server started with --api-key)"),
    (404, "unknown model, or no model of this route's task loaded"),
    (408, "the request body did not arrive in time"),
    (413, "upload, image (pixels) or batch over the server's limits"),
    (415, "neither multipart/form-data nor application/json"),
    (422, "not an image, corrupt or truncated image, not base64"),
]}
