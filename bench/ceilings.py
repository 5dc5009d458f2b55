"""What htq is measured against: the same work with no queue, each in a process of its own.

Usage:
    python -m bench.ceilings tornado --port 0
        A bare Tornado server whose POST / parses the JSON body and answers 303 with a
        Location, as htq's does, minus validation and Redis. Prints "ready <port>".
    python -m bench.ceilings httpx URL --requests N --threads 10
        N GETs of URL from 10 threads, each with its own keep-alive httpx.Client, as htq's
        worker threads have. Prints {"requests", "seconds", "rps", "errors"} as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
import uuid

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web


class EnqueueHandler(tornado.web.RequestHandler):
    async def post(self) -> None:
        json.loads(self.request.body)
        self.set_status(303)
        self.set_header(
            "Location", f"{self.request.protocol}://{self.request.host}/{uuid.uuid4()}/"
        )
        self.finish()


async def serve_tornado(port: int) -> None:
    app = tornado.web.Application([(r"/", EnqueueHandler)], log_function=lambda handler: None)
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print(f"ready {sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.stop()


def send_all(url: str, requests: int, threads: int) -> dict[str, float]:
    """Send `requests` GETs from `threads` threads (own client each); time from the first."""
    lock = threading.Lock()
    left = requests
    errors = 0
    start = threading.Barrier(threads + 1)

    def take() -> bool:
        nonlocal left
        with lock:
            left -= 1
            return left >= 0

    def run() -> None:
        nonlocal errors
        with httpx.Client(timeout=30) as client:
            start.wait()
            while take():
                try:
                    client.get(url).read()
                except httpx.HTTPError:
                    with lock:
                        errors += 1

    pool = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - began
    return {"requests": requests, "seconds": seconds, "rps": requests / seconds, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings")
    kinds = parser.add_subparsers(dest="kind", required=True)
    bare = kinds.add_parser("tornado")
    bare.add_argument("--port", type=int, default=0)
    threads = kinds.add_parser("httpx")
    threads.add_argument("url")
    threads.add_argument("--requests", type=int, required=True)
    threads.add_argument("--threads", type=int, default=10)
    args = parser.parse_args()
    if args.kind == "tornado":
        asyncio.run(serve_tornado(args.port))
    else:
        print(json.dumps(send_all(args.url, args.requests, args.threads)), flush=True)


if __name__ == "__main__":
    main()
