"""HTTP benchmark of POST /v1/moderate against a trivial echo route on the same server stack.

    python scripts/bench_http.py [--bundle DIR] [--seconds 10] [--concurrency 32] [--workers 1]

Starts the service (storage on: a fresh SQLite database in a temporary data directory, or
DATABASE_URL) in a separate process with an extra `POST /bench/echo` route, then drives it from
this process with a raw-socket HTTP/1.1 keep-alive load generator (asyncio):

1. closed loop at the given concurrency: maximum throughput of the echo route and of /v1/moderate;
2. open loop at half of /v1/moderate's maximum: requests are sent on a fixed schedule and latency
   is measured from the scheduled time (no coordinated omission); p50/p99 reported.

Prints a Markdown table. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXTS = [
    "Great reporting, the numbers on the council budget finally make sense to me.",
    "I disagree with the mayor but this article is fair to both sides.",
    "My car insurance is only $25/month from Insurance Panda, check it out! Anyway good article.",
    "This is the third time this year the trains have failed. Who is accountable?",
    "Earn $500 a day working from home, visit cash-now.example for details!!!",
    "Thanks for the explainer, the graphic about the flood levels was really helpful.",
    "You are an idiot and so is everyone who agrees with you.",
    "Does anyone know if the road closure includes the bridge on Elm Street?",
]


def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from fastapi import Request
    from fastapi.responses import Response

    from api.main import create_app

    app = create_app()

    @app.post("/bench/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# ---------------------------------------------------------------------------------------------
# load generator


def _request(path: str, body: bytes, key: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> int:
    writer.write(payload)
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


class Bodies:
    def __init__(self) -> None:
        self.n = 0
        self.run = random.randrange(10**9)

    def next(self) -> bytes:
        self.n += 1
        text = TEXTS[self.n % len(TEXTS)]
        return json.dumps({"comment": {"id": f"bench-{self.run}-{self.n}", "text": text}}).encode()


async def closed_loop(
    port: int, path: str, key: str, concurrency: int, seconds: float
) -> tuple[float, list[float], int]:
    bodies = Bodies()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await _roundtrip(reader, writer, _request(path, bodies.next(), key))
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies, errors


async def open_loop(
    port: int, path: str, key: str, rate: float, seconds: float, connections: int
) -> tuple[list[float], int]:
    bodies = Bodies()
    total = int(rate * seconds)
    queue: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            scheduled = await queue.get()
            if scheduled < 0:
                break
            status = await _roundtrip(reader, writer, _request(path, bodies.next(), key))
            latencies.append(time.perf_counter() - scheduled)
            errors += status != 200
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(scheduled)
    for _ in workers:
        queue.put_nowait(-1.0)
    await asyncio.gather(*workers)
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--bundle", help="bundle directory (default: the packaged bundle)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args)
        return 0

    data_dir = Path(tempfile.mkdtemp(prefix="moderato-bench-"))
    env = {**os.environ, "MODERATO_DATA_DIR": str(data_dir), "MODERATO_LOG_LEVEL": "WARNING"}
    if args.bundle:
        env["MODERATO_BUNDLE"] = str(Path(args.bundle).resolve())
    root = Path(__file__).resolve().parents[1]
    created = subprocess.run(
        [sys.executable, "-m", "api.cli", "site", "create", "bench"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(args.port)],
        env=env,
        cwd=root,
    )
    try:
        for _ in range(100):
            try:
                asyncio.run(closed_loop(args.port, "/bench/echo", key, 1, 0.05))
                break
            except OSError:
                time.sleep(0.1)
        asyncio.run(closed_loop(args.port, "/v1/moderate", key, args.concurrency, 1.0))  # warm up
        echo_rps, echo_lat, _ = asyncio.run(closed_loop(args.port, "/bench/echo", key, args.concurrency, args.seconds))
        mod_rps, mod_lat, mod_err = asyncio.run(
            closed_loop(args.port, "/v1/moderate", key, args.concurrency, args.seconds)
        )
        rate = mod_rps / 2
        open_lat, open_err = asyncio.run(
            open_loop(args.port, "/v1/moderate", key, rate, args.seconds, connections=args.concurrency)
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"| measurement (loopback, SQLite WAL, storage on, concurrency {args.concurrency}) | value |")
    print("|---|---|")
    print(f"| echo route max throughput | {echo_rps:,.0f} req/s (p99 {pct(echo_lat, 0.99):.1f} ms) |")
    print(f"| /v1/moderate max throughput | {mod_rps:,.0f} req/s (p99 {pct(mod_lat, 0.99):.1f} ms, {mod_err} errors) |")
    print(f"| ratio moderate / echo | {mod_rps / echo_rps:.3f} (floor 0.15) |")
    print(
        f"| /v1/moderate at {rate:,.0f} req/s offered (half max) | p50 {pct(open_lat, 0.5):.1f} ms, "
        f"p99 {pct(open_lat, 0.99):.1f} ms (floor p99 <= 25 ms), {open_err} errors |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
