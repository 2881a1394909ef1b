"""The HTTP service, against a real `vitlens serve` process on loopback with real digits."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from serve_helpers import digit_png, running_server
from vitlens.explain import explain
from vitlens.inference import load, predict
from vitlens.preprocess import image_to_tensor
from vitlens.serve import MicroBatcher
from vitlens.serve.app import SMALL_IMAGE_BYTES

DIGITS = 24


@pytest.fixture(scope="module")
def server(trained):
    with running_server(trained[0]) as base:
        yield base


@pytest.fixture(scope="module")
def model(trained):
    return load(trained[0])


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The first bundled test digits as PNG files: [(path, bytes, label)]."""
    folder = tmp_path_factory.mktemp("digits")
    out = []
    for i in range(DIGITS):
        png, label = digit_png(i)
        path = folder / f"{i:02d}_{label}.png"
        path.write_bytes(png)
        out.append((path, png, label))
    return out


def post_file(base: str, png: bytes, endpoint: str = "predict", **params) -> httpx.Response:
    return httpx.post(f"{base}/v1/{endpoint}", files={"file": ("digit.png", png, "image/png")}, params=params)


def test_health_and_model_description(server, model, trained):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    info = httpx.get(f"{server}/v1/model").json()
    assert info["parameters"] == model.num_parameters() == 205_706
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["image_size"] == [30, 30] and info["grid"] == [5, 5] and info["patch_size"] == 6
    assert info["checkpoint"] == str(trained[0]) and info["config"]["dim"] == 64


def test_predict_agrees_with_the_library_in_every_body_format(server, model, digits):
    expected = predict(model, [p for p, _, _ in digits], top_k=3)
    for (_, png, _), want in zip(digits, expected, strict=True):
        b64 = base64.b64encode(png).decode()
        answers = [post_file(server, png),
                   httpx.post(f"{server}/v1/predict", json={"image": b64}),
                   httpx.post(f"{server}/v1/predict", json={"image": f"data:image/png;base64,{b64}"}),
                   httpx.post(f"{server}/v1/predict", content=png, headers={"content-type": "image/png"})]
        for response in answers:
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["label"] == want.label and body["index"] == int(want.label)
            assert [t["class"] for t in body["top"]] == [c for c, _ in want.top]
            assert torch.allclose(torch.tensor(body["probabilities"]), torch.tensor(want.probabilities), atol=1e-5)
            assert body["latency_ms"] > 0 and body["batch_size"] >= 1
    accuracy = sum(w.label == str(label) for w, (_, _, label) in zip(expected, digits, strict=True)) / DIGITS
    assert accuracy >= 0.75  # a real trained model, not noise


def test_a_photo_of_a_dark_digit_on_paper(server, model, digits, tmp_path):
    """A big RGB JPEG (decoded off the event loop) of a dark digit on white: inverted and centred like MNIST."""
    path, _, _ = digits[1]
    grey = 255 - np.asarray(Image.open(path).resize((1200, 1200), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = np.random.default_rng(0).integers(-12, 13, size=(1200, 1200, 3))
    photo = np.clip(grey[..., None] + noise, 0, 255).astype(np.uint8)
    target = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(target, quality=92)
    assert target.stat().st_size > SMALL_IMAGE_BYTES
    want = predict(model, [target])[0]
    body = post_file(server, target.read_bytes()).json()
    assert body["label"] == want.label == predict(model, [path])[0].label
    assert torch.allclose(torch.tensor(body["probabilities"]), torch.tensor(want.probabilities), atol=1e-5)


def test_top_k_from_query_form_or_json(server, digits):
    png = digits[0][1]
    assert len(post_file(server, png, top_k=7).json()["top"]) == 7
    form = httpx.post(f"{server}/v1/predict", files={"file": ("d.png", png, "image/png")}, data={"top_k": "5"})
    assert len(form.json()["top"]) == 5
    body = httpx.post(f"{server}/v1/predict", json={"image": base64.b64encode(png).decode(), "top_k": 10})
    top = body.json()["top"]
    assert len(top) == 10 and sorted(t["class"] for t in top) == [str(i) for i in range(10)]
    assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)


def test_requests_that_arrive_together_share_a_batch_without_changing_results(server, model, digits):
    """Dynamic micro-batching: 48 concurrent requests; some forward passes hold several; answers unchanged."""
    expected = {str(p): w for p, w in zip([p for p, _, _ in digits], predict(model, [p for p, _, _ in digits]),
                                          strict=True)}

    async def fire() -> list[tuple[str, dict]]:
        async with httpx.AsyncClient(base_url=server, limits=httpx.Limits(max_connections=48)) as client:
            async def one(path: Path, png: bytes) -> tuple[str, dict]:
                r = await client.post("/v1/predict", files={"file": ("d.png", png, "image/png")})
                assert r.status_code == 200, r.text
                return str(path), r.json()
            return await asyncio.gather(*(one(p, png) for p, png, _ in digits + digits))

    answers = asyncio.run(fire())
    assert max(a["batch_size"] for _, a in answers) > 1
    for path, answer in answers:
        want = expected[path]
        assert answer["label"] == want.label
        assert torch.allclose(torch.tensor(answer["probabilities"]), torch.tensor(want.probabilities), atol=1e-5)


def test_micro_batcher_respects_max_batch_and_returns_each_row(model, digits):
    images = [image_to_tensor(Image.open(p), model.config) for p, _, _ in digits[:10]]
    with torch.inference_mode():
        alone = [model(x[None])[0] for x in images]

    async def run(max_batch: int) -> list:
        batcher = MicroBatcher(model, max_batch=max_batch, max_wait_ms=20)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(x) for x in images))
        finally:
            await batcher.stop()

    for max_batch, largest in [(1, 1), (4, 4), (64, 10)]:
        results = asyncio.run(run(max_batch))
        assert max(r.batch_size for r in results) == largest
        for r, want in zip(results, alone, strict=True):
            assert torch.allclose(r.row, want, atol=1e-5)


def test_explain_returns_real_attention_and_pictures(server, model, digits):
    png = digits[0][1]
    response = post_file(server, png, "explain", top_k=2)
    assert response.status_code == 200, response.text
    body = response.json()
    want = explain(model, image_to_tensor(Image.open(io.BytesIO(png)), model.config))
    assert body["grid"] == [5, 5] and len(body["top"]) == 2 and body["label"] == want.top(1)[0][0]
    last = want.cls_attention[-1]
    heads = torch.tensor(body["attention"]["last_layer_heads"])
    assert heads.shape == (model.config.heads, 25)  # 5×5 patches
    assert torch.allclose(heads, last, atol=1e-6)
    assert torch.allclose(torch.tensor(body["attention"]["last_layer"]), last.mean(0), atol=1e-6)
    assert torch.allclose(torch.tensor(body["attention"]["rollout"]), want.rollout, atol=1e-6)
    for key in ("input_png", "last_layer_png", "rollout_png"):
        picture = Image.open(io.BytesIO(base64.b64decode(body["images"][key])))
        assert picture.format == "PNG" and picture.size == (224, 224)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 6000) -> bytes:
    """A real decompression bomb: a side×side black greyscale PNG (36 M pixels) that packs into ~35 kB."""
    row = b"\x00" + bytes(side)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def multipart(png: bytes) -> dict:
    return {"files": {"file": ("digit.png", png, "image/png")}}


BAD_INPUTS = {
    "not an image": (lambda png: multipart(b"GIF? no, a text file\n" * 20), 400, "not an image"),
    "empty body": (lambda png: {"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty"),
    "empty upload": (lambda png: multipart(b""), 400, "empty"),
    "truncated PNG": (lambda png: multipart(png[: len(png) // 2]), 400, "truncated"),
    "decompression bomb": (lambda png: multipart(bomb_png()), 413, "36,000,000 pixels"),
    "body over the limit": (lambda png: {"content": png + bytes(11 * 2**20), "headers": {"content-type": "image/png"}},
                            413, "limit"),
    "wrong content type": (lambda png: {"content": png, "headers": {"content-type": "text/plain"}}, 415,
                           "text/plain"),
    "no content type": (lambda png: {"content": png}, 415, "content type none"),
    "top_k 0 in the query": (lambda png: {**multipart(png), "params": {"top_k": 0}}, 422, "top_k"),
    "top_k 11 in the query": (lambda png: {**multipart(png), "params": {"top_k": 11}}, 422, "top_k"),
    "top_k not a number": (lambda png: {**multipart(png), "params": {"top_k": "three"}}, 422, "top_k"),
    "top_k 11 in JSON": (lambda png: {"json": {"image": base64.b64encode(png).decode(), "top_k": 11}}, 422,
                         "from 1 to 10"),
    "top_k 2.5 in a form": (lambda png: {**multipart(png), "data": {"top_k": "2.5"}}, 422, "whole number"),
    "JSON without image": (lambda png: {"json": {"picture": "x"}}, 422, "'image' field"),
    "JSON image not a string": (lambda png: {"json": {"image": 7}}, 422, "base64 string"),
    "invalid base64": (lambda png: {"json": {"image": "not base64 !!"}}, 400, "base64"),
    "invalid JSON": (lambda png: {"content": b"{image:", "headers": {"content-type": "application/json"}}, 400,
                     "not valid JSON"),
    "form without a file": (lambda png: {"data": {"image": "x"}, "files": {"other": ("x.txt", b"1")}}, 422,
                            "'file'"),
    "malformed multipart": (lambda png: {"content": b"--nope\r\n\r\n", "headers": {
        "content-type": "multipart/form-data; boundary=xyz"}}, 400, "multipart"),
}


@pytest.mark.parametrize("endpoint", ["predict", "explain"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_specific_4xx(server, digits, case, endpoint):
    make, status, words = BAD_INPUTS[case]
    response = httpx.post(f"{server}/v1/{endpoint}", **make(digits[0][1]))
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_the_page_is_served_with_no_external_resources(server):
    html = httpx.get(f"{server}/").text
    assert '<canvas id="canvas"' in html and 'type="file"' in html
    for asset in ("/static/app.js", "/static/style.css"):
        response = httpx.get(f"{server}{asset}")
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text
    assert "http://" not in html and "https://" not in html
    assert httpx.get(f"{server}/docs").status_code == 200


def test_schemathesis_finds_no_server_error(server, tmp_path):
    """Schemathesis generates requests from the app's own OpenAPI schema: no 5xx, responses match the schema.
    (Its 'positive data acceptance' check is left out: a random string the schema allows is not an image.)"""
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(cli), "run", f"{server}/openapi.json", "--checks", "all", "--exclude-checks",
         "positive_data_acceptance", "--max-examples", "40", "--generation-deterministic", "--request-timeout", "20"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4/4" in result.stdout  # every operation was tested
