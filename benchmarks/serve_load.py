"""Load on `vitlens serve` from a second process on loopback: requests/s and latency, with and without
micro-batching. Bounded (a fixed number of requests), stops by itself, writes JSON.

    python benchmarks/serve_load.py [--checkpoint DIR] [--requests 2000] [--concurrency 16]

Without --checkpoint it serves a freshly initialised `mnist` preset model (the same computation as a
trained one). The server is started as a subprocess, once with micro-batching and once with
``--max-batch 1``; this process is the client: ``concurrency`` keep-alive connections, each sending
its share of the requests one after the other (real PNG digits from the bundled sample, as multipart
uploads like the web page's), timed from send to the last byte of the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_helpers import digit_png, running_server
from vitlens import create_model
from vitlens.bench import percentile
from vitlens.checkpoint import save_model


def request_bytes(png: bytes, body: str, host: str) -> bytes:
    """One whole HTTP/1.1 POST /v1/predict, built once and sent as is (the client must cost little CPU:
    a general client such as httpx spends ~3 ms of CPU per multipart request, more than the server)."""
    if body == "multipart":
        boundary = uuid.uuid4().hex
        payload = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
                   "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        payload, content_type = png, "image/png"
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    return head + payload


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; (status, body) of the answer."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def load(base: str, bodies: list[bytes], requests: int, concurrency: int, body: str) -> dict:
    host, port = base.removeprefix("http://").split(":")
    raws = [request_bytes(png, body, f"{host}:{port}") for png in bodies]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    batch_sizes: list[int] = []

    async def connection(counter: Iterator[int]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in counter:
                start = time.perf_counter()
                try:
                    status, answer = await asyncio.wait_for(exchange(reader, writer, raws[i % len(raws)]), 30)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as err:
                    errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                if status == 200:
                    batch_sizes.append(json.loads(answer)["batch_size"])
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(iter(range(50))) for _ in range(4)))  # warm-up
    latencies.clear(), batch_sizes.clear(), errors.clear()
    counter = iter(range(requests))
    start = time.perf_counter()
    await asyncio.gather(*(connection(counter) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"requests": requests, "concurrency": concurrency, "body": body, "errors": sum(errors.values()),
            "error_kinds": errors, "seconds": round(elapsed, 3), "requests_per_s": round(requests / elapsed, 1),
            "latency_ms": {"p50": round(percentile(latencies, 50), 2), "p90": round(percentile(latencies, 90), 2),
                           "p99": round(percentile(latencies, 99), 2), "max": round(max(latencies), 2),
                           "mean": round(statistics.fmean(latencies), 2)},
            "mean_batch_size": round(statistics.fmean(batch_sizes), 2) if batch_sizes else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: an untrained mnist preset)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--body", choices=["multipart", "raw"], default="multipart")
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "serve_load.json")
    args = parser.parse_args()
    bodies = [digit_png(i)[0] for i in range(100)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = Path(tmp) / "mnist"
            save_model(checkpoint, create_model("mnist"))
        runs = {}
        for name, flags in [("micro_batching", ["--max-batch", "64", "--max-wait-ms", str(args.max_wait_ms)]),
                            ("no_batching", ["--max-batch", "1"])]:
            with running_server(checkpoint, *flags) as base:
                runs[name] = asyncio.run(load(base, bodies, args.requests, args.concurrency, args.body))
            print(name, json.dumps(runs[name]))
    report = {"benchmark": "serve_load", "checkpoint": str(args.checkpoint or "untrained mnist preset"),
              "machine": {"cpus": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
                          "torch": torch.__version__},
              "runs": runs,
              "speedup_requests_per_s": round(runs["micro_batching"]["requests_per_s"]
                                              / runs["no_batching"]["requests_per_s"], 2)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
