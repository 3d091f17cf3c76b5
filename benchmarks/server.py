"""HTTP server benchmark: requests/s and p50/p99 latency for FHIR $lookup and /search on loopback.

Starts ``medcodes serve`` (uvicorn, ``--workers``; uvloop + httptools when installed) on
127.0.0.1 against a store, then drives it with a small asyncio HTTP/1.1 keep-alive load
generator: ``--connections`` concurrent connections (default 32), each sending requests
back to back for ``--seconds``. Requests cycle through ``--codes`` distinct ICD-10-CM
codes (and search queries made from their titles), after one warm-up pass over each,
so the server's response cache is warm the way it is in steady use; a second run with
the response cache off (MEDCODES_RESPONSE_CACHE=0) measures every request computed.

Targets (issue 6): at least 1,500 $lookup requests/s and p99 under 50 ms.

Usage: python benchmarks/server.py [--home DIR] [--workers 2] [--seconds 10] [--connections 32]
       python benchmarks/server.py --url http://127.0.0.1:8000   (an already running server)
Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_codes(home: str | None, n: int) -> list[str]:
    """``n`` billable ICD-10-CM codes spread evenly over the release in effect."""
    from medcodes import Codebook

    book = Codebook.open(home)
    codes = list(book.codes("icd10cm", billable=True))
    book.close()
    step = max(1, len(codes) // n)
    return codes[::step][:n]


def titles(home: str | None, codes: list[str]) -> list[str]:
    from medcodes import Codebook

    book = Codebook.open(home)
    out = []
    for c in codes:
        t = book.describe(c) or c
        words = [w for w in t.split() if w.isalpha() and len(w) > 3][:2]
        out.append(" ".join(words) or c)
    book.close()
    return out


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _worker(host: str, port: int, paths: list[str], start: int, deadline: float,
                  lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            status = await _request(reader, writer, paths[i % len(paths)])
            lat.append(time.perf_counter() - t)
            if status != 200:
                errors.append(status)
            i += 1
    finally:
        writer.close()


async def load(host: str, port: int, paths: list[str], seconds: float, conns: int) -> dict[str, float]:
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    deadline = t0 + seconds
    step = max(1, len(paths) // conns)
    await asyncio.gather(*(_worker(host, port, paths, k * step, deadline, lat, errors) for k in range(conns)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(lat), "rps": len(lat) / elapsed,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
            "mean_ms": 1000 * statistics.fmean(lat) if lat else float("nan"), "errors": len(errors)}


def warm(base: str, paths: list[str]) -> None:
    for p in paths:
        try:
            with urllib.request.urlopen(base + p, timeout=120) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"warm-up: {p}: HTTP {exc.code} {exc.read()[:200]!r}") from None


def wait_up(base: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("server exited before answering")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("server did not start")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=os.environ.get("MEDCODES_HOME"))
    ap.add_argument("--url", help="benchmark an already running server instead of starting one")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--codes", type=int, default=2000)
    args = ap.parse_args()
    args.seconds = min(args.seconds, 120.0)

    codes = sample_codes(args.home, args.codes)
    lookups = [f"/fhir/CodeSystem/$lookup?system={ICD10CM}&code={urllib.parse.quote(c)}" for c in codes]
    searches = [f"/search?q={urllib.parse.quote(q)}&limit=10" for q in titles(args.home, codes[:500])]

    if args.url:
        bench(args.url.rstrip("/"), None, args, lookups, searches, "as running")
        return
    for label, cache in (("response cache on (steady state)", "20000"), ("response cache off (every request computed)", "0")):
        port = free_port()
        env = dict(os.environ, MEDCODES_RESPONSE_CACHE=cache)
        if args.home:
            env["MEDCODES_HOME"] = args.home
        proc = subprocess.Popen([sys.executable, "-m", "medcodes.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", str(args.workers)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bench(f"http://127.0.0.1:{port}", proc, args, lookups, searches, label)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def bench(base: str, proc: subprocess.Popen[bytes] | None, args: argparse.Namespace,
          lookups: list[str], searches: list[str], label: str) -> None:
    wait_up(base, proc)
    parsed = urllib.parse.urlsplit(base)
    host, port_ = parsed.hostname or "127.0.0.1", parsed.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    loop_name = "uvloop" if _has("uvloop") else "asyncio"
    print(f"server {base} workers={args.workers if proc else '?'}, {label}; client: {args.connections} "
          f"connections, {args.seconds:g} s per endpoint, {len(lookups)} codes (server loop: {loop_name})")
    for name, paths, target in (("$lookup", lookups, (1500, 50.0)), ("/search", searches, None)):
        warm(base, paths)
        r = asyncio.run(load(host, port_, paths, args.seconds, args.connections))
        line = (f"{name:8} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                f"({r['requests']} requests, {r['errors']} non-200)")
        if target:
            ok = r["rps"] >= target[0] and r["p99_ms"] < target[1]
            line += f"  target >= {target[0]} req/s, p99 < {target[1]:g} ms: {'MET' if ok else 'MISSED'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
