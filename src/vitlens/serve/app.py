"""The HTTP service: ``create_app(model)`` → a FastAPI app with the prediction API and the web page.

Endpoints: ``POST /v1/predict``, ``POST /v1/explain``, ``GET /v1/model``, ``GET /healthz``, the page at
``/`` and OpenAPI docs at ``/docs``. Predictions go through a `MicroBatcher`; explanations (a traced
forward pass) run one at a time on the same model thread.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as StarletteRequest
from starlette.types import Message
from torch import Tensor

from vitlens.explain import explain
from vitlens.inference import load, top_classes
from vitlens.model.vit import VisionTransformer
from vitlens.preprocess import image_to_tensor, unstandardise
from vitlens.serve.batching import MicroBatcher
from vitlens.serve.heatmap import heatmap_png, png_bytes
from vitlens.serve.inputs import (
    FORM_TYPE,
    JSON_TYPE,
    Limits,
    RequestError,
    check_content_type,
    decode_image,
    parse_json_body,
    parse_top_k,
)

STATIC = resources.files("vitlens.serve") / "static"
SMALL_IMAGE_BYTES = 64 * 1024


class ClassProbability(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_name: str = Field(alias="class", description="class name")
    probability: float


class PredictResponse(BaseModel):
    label: str = Field(description="the most likely class")
    index: int = Field(description="its class index")
    top: list[ClassProbability] = Field(description="the top-k classes, most likely first")
    probabilities: list[float] = Field(description="softmax probability of every class, in class order")
    latency_ms: float = Field(description="time in the server from the request's arrival to this answer")
    batch_size: int = Field(description="how many requests shared this forward pass (micro-batching)")


class AttentionMaps(BaseModel):
    last_layer: list[float] = Field(description="class token → patch attention, last layer, mean over heads (N)")
    last_layer_heads: list[list[float]] = Field(description="the same per head (h × N)")
    rollout: list[float] = Field(description="attention rollout of the class token over the patches (N)")


class ExplainImages(BaseModel):
    input_png: str = Field(description="the model's input after preprocessing, PNG, base64")
    last_layer_png: str = Field(description="last-layer class-token attention over the input, PNG, base64")
    rollout_png: str = Field(description="attention rollout over the input, PNG, base64")


class ExplainResponse(BaseModel):
    label: str
    index: int
    top: list[ClassProbability]
    probabilities: list[float]
    latency_ms: float
    grid: list[int] = Field(description="patch grid (rows, columns); patch n is at row n // columns")
    attention: AttentionMaps
    images: ExplainImages


class ModelResponse(BaseModel):
    checkpoint: str | None
    parameters: int
    class_names: list[str]
    image_size: list[int]
    in_channels: int
    patch_size: int
    grid: list[int]
    config: dict[str, Any]
    max_batch: int
    max_wait_ms: float
    limits: dict[str, int]


class Health(BaseModel):
    status: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {JSON_TYPE: {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}}
    for code, text in [(400, "the body or image cannot be read"), (413, "body or image too large"),
                       (415, "content type not accepted"), (422, "a field is missing or out of range")]
}


def image_body(num_classes: int) -> dict[str, Any]:
    """The OpenAPI request body for endpoints that take one image (the handlers parse it themselves)."""
    top_k = {"type": "integer", "minimum": 1, "maximum": num_classes}
    return {"requestBody": {"required": True, "content": {
        FORM_TYPE: {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, "top_k": top_k}}},
        JSON_TYPE: {"schema": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "contentEncoding": "base64", "description": "base64 image or data: URL"},
            "top_k": top_k}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    }}}


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing it (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared):,} bytes, over this server's limit of {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over this server's limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_image_request(request: Request, limits: Limits) -> tuple[bytes, Any]:
    """(image bytes, top_k from the body or None) from a form, JSON or raw-image request."""
    media = check_content_type(request.headers.get("content-type"))
    body = await read_body(request, limits.max_body_bytes)
    if media == JSON_TYPE:
        return parse_json_body(body)
    if media != FORM_TYPE:
        return body, None

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await StarletteRequest(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as err:  # starlette reports malformed multipart bodies in several ways
        detail = getattr(err, "detail", None) or err
        raise RequestError(400, f"malformed multipart body ({detail}): send the image as a 'file' field") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise RequestError(422, "the form has no 'file' upload: send the image as a file field named 'file'")
    return await upload.read(), form.get("top_k")


def create_app(model: VisionTransformer | str | Path, max_batch: int = 64, max_wait_ms: float = 2.0,
               limits: Limits | None = None, default_top_k: int = 3) -> FastAPI:
    """The service for a model or a checkpoint folder. ``max_batch=1`` serves without micro-batching."""
    checkpoint = None if isinstance(model, VisionTransformer) else str(model)
    net = model if isinstance(model, VisionTransformer) else load(model)
    net.eval()
    config = net.config
    limits = limits or Limits()
    names = config.class_labels
    k_classes = len(names)
    device = next(net.parameters()).device

    def probabilities(batch: Tensor) -> Tensor:
        return net(batch.to(device)).float().softmax(-1).cpu()

    batcher = MicroBatcher(probabilities, max_batch, max_wait_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="vitlens", version="0.1.0", lifespan=lifespan,
                  description="Predict with a Vision Transformer and see where its class token looks.")

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_field(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                             for e in err.errors())
        return JSONResponse({"detail": problems, "errors": jsonable_encoder(err.errors())}, status_code=422)

    def model_input(data: bytes) -> Tensor:
        img = decode_image(data, limits)
        try:
            return image_to_tensor(img, config)
        except Exception as err:  # an image mode or shape PIL cannot convert
            raise RequestError(400, f"cannot convert the {img.mode} {img.format or ''} image for the model ({err}): "
                                    "send an RGB or greyscale image") from None

    async def image_and_k(request: Request, query_k: int | None) -> tuple[Tensor, int]:
        data, body_k = await read_image_request(request, limits)
        k = parse_top_k(body_k if body_k is not None else query_k, k_classes, default_top_k)
        # small images (a drawn digit: ~1 kB) decode faster than a thread hand-off; big photos must not block the loop
        x = model_input(data) if len(data) < SMALL_IMAGE_BYTES else await run_in_threadpool(model_input, data)
        return x, k

    def ranked(probs: Tensor, k: int) -> dict[str, Any]:
        top = top_classes(probs, names, k)
        return {"label": top[0][0], "index": int(probs.argmax()), "probabilities": probs.tolist(),
                "top": [{"class": c, "probability": p} for c, p in top]}

    def top_k_query() -> Any:
        return Query(None, ge=1, le=k_classes, description="classes to return, most likely first")

    @app.post("/v1/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=image_body(k_classes),
              summary="Classify one image")
    async def predict(request: Request, top_k: int | None = top_k_query()) -> dict[str, Any]:
        start = time.perf_counter()
        x, k = await image_and_k(request, top_k)
        result = await batcher.submit(x)
        return {**ranked(result.row, k), "latency_ms": (time.perf_counter() - start) * 1000,
                "batch_size": result.batch_size}

    def explained(x: Tensor, k: int) -> dict[str, Any]:
        e = explain(net, x)
        last = e.cls_attention[-1]  # (h, N)
        picture = unstandardise(x, config)
        return {**ranked(e.probabilities.float(), k), "grid": list(e.grid),
                "attention": {"last_layer": last.mean(0).tolist(), "last_layer_heads": last.tolist(),
                              "rollout": e.rollout.tolist()},
                "images": {"input_png": base64.b64encode(png_bytes(picture)).decode(),
                           "last_layer_png": base64.b64encode(heatmap_png(picture, last.mean(0), e.grid)).decode(),
                           "rollout_png": base64.b64encode(heatmap_png(picture, e.rollout, e.grid)).decode()}}

    @app.post("/v1/explain", response_model=ExplainResponse, responses=ERRORS, openapi_extra=image_body(k_classes),
              summary="Classify one image and show where the class token looks")
    async def explain_image(request: Request, top_k: int | None = top_k_query()) -> dict[str, Any]:
        start = time.perf_counter()
        if not config.class_token:
            raise RequestError(422, "this model pools by mean and has no class token to follow: use /v1/predict")
        x, k = await image_and_k(request, top_k)
        out = await batcher.run_alone(explained, x, k)
        return {**out, "latency_ms": (time.perf_counter() - start) * 1000}

    @app.get("/v1/model", response_model=ModelResponse, summary="The served model")
    async def model_info() -> dict[str, Any]:
        return {"checkpoint": checkpoint, "parameters": net.num_parameters(), "class_names": names,
                "image_size": list(config.image_size), "in_channels": config.in_channels,
                "patch_size": config.patch_size, "grid": list(config.grid_size), "config": config.to_dict(),
                "max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait * 1000,
                "limits": {"max_body_bytes": limits.max_body_bytes, "max_pixels": limits.max_pixels}}

    @app.get("/healthz", response_model=Health, summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
