"""Server fuzz and soak: malformed, huge and nested requests mixed with ordinary load, for minutes.

Starts ``medcodes serve`` (default settings: one worker, response cache on) on 127.0.0.1 and
drives it with ``--concurrency`` keep-alive clients for ``--minutes`` (default 10; bounded:
at most 60). Each request is drawn from a seeded mix:

- ordinary reads (about 70%): FHIR $lookup (GET and POST) over every billable ICD-10-CM code,
  /codes/{code}, /search over title words, $validate-code, $expand with a filter, /claims/check
  with a valid claim and with the FHIR Bundle fixture;
- client mistakes (about 30%): dates like 2026-13-45 and ``garbage``, offset 10^23, 50,000
  nested ``[``, 0.9 MB junk parameters, 990-word $expand filters, bodies over the size cap,
  URIs over the length cap, invalid JSON, random bytes, wrong content types, a FHIR Patient
  where a Claim is expected, and random JSON documents (seeded) posted to every POST route.

It prints the status-code counts per kind of request, the number of 5xx answers to client
mistakes (target 0), dropped connections, latency p50/p99, the server's RSS at start, after
the warm-up (``--warmup`` s of wrk over every code's $lookup and over /search, then 20 s of
the mix: the bounded caches fill) and at the end (target: end within 20% of the warmed-up
figure), and whether the server log has any traceback.

Usage: python benchmarks/soak.py [--home DIR] [--minutes 10] [--concurrency 16] [--seed 9]
Traffic goes to 127.0.0.1 only; the run stops by itself.
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
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import httpx

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
VS = ICD10CM + "?fhir_vs"
ROOT = Path(__file__).resolve().parents[1]
FHIR_JSON = {"content-type": "application/fhir+json"}

Req = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workload(home: str | None) -> tuple[list[str], list[str]]:
    from medcodes import Codebook

    book = Codebook.open(home)
    codes = list(book.codes("icd10cm", billable=True))
    words: set[str] = set()
    for c in codes[::50]:
        words.update(w.lower() for w in (book.describe(c) or "").split() if w.isalpha() and len(w) > 3)
    book.close()
    return codes, sorted(words)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 6 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 10 ** rng.randrange(1, 30), 3.5, float(rng.random())])
    if kind in (3, 4):
        return rng.choice(["", "E11.65", "2026-13-45", "Claim", "Parameters", "\u0000", "x" * rng.randrange(300),
                           "\U0001F600", "resourceType", "professional"])
    if kind in (5, 6):
        keys = ["resourceType", "parameter", "name", "valueCode", "id", "type", "service_date", "lines",
                "diagnoses", "code", "entry", "resource", "patient", "claims", "item", "diagnosis"]
        return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def make_mix(codes: list[str], words: list[str], rng: random.Random) -> tuple[list[tuple[float, str, Callable[[], Req]]], int]:
    fhir_fixture = (ROOT / "tests" / "fixtures" / "claims" / "claim_synthetic_fhir.json").read_bytes()
    claim = {"id": "soak-1", "type": "professional", "service_date": "2026-05-01",
             "patient": {"sex": "F", "birth_date": "1960-01-01"},
             "diagnoses": ["E11.65"], "lines": [{"code": "E0130", "diagnosis_pointers": [1]}]}
    state = {"i": rng.randrange(len(codes))}

    def code() -> str:
        state["i"] = (state["i"] + 1) % len(codes)
        return codes[state["i"]]

    def params(*pairs: tuple[str, str, Any]) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": [{"name": n, t: v} for n, t, v in pairs]}

    ok: list[tuple[float, str, Callable[[], Req]]] = [
        (30, "ok $lookup GET", lambda: ("GET", "/fhir/CodeSystem/$lookup", {"params": {"system": ICD10CM, "code": code()}})),
        (8, "ok $lookup POST", lambda: ("POST", "/fhir/CodeSystem/$lookup", {"json": params(
            ("system", "valueUri", ICD10CM), ("code", "valueCode", code()))})),
        (10, "ok /codes", lambda: ("GET", f"/codes/{code()}", {})),
        (12, "ok /search", lambda: ("GET", "/search", {"params": {"q": " ".join(rng.sample(words, rng.randrange(1, 4))),
                                                                    "limit": str(rng.choice([5, 10, 20]))}})),
        (4, "ok $validate-code", lambda: ("GET", "/fhir/CodeSystem/$validate-code", {"params": {"url": ICD10CM, "code": code()}})),
        (3, "ok $expand", lambda: ("GET", "/fhir/ValueSet/$expand", {"params": {"url": VS, "filter": rng.choice(words),
                                                                                   "count": "20"}})),
        (2, "ok /claims/check", lambda: ("POST", "/claims/check", {"json": claim})),
        (1, "ok /claims/check FHIR", lambda: ("POST", "/claims/check", {"content": fhir_fixture,
                                                                          "headers": {"content-type": "application/json"}})),
    ]
    junk = "z" * 900_000
    bad: list[tuple[float, str, Callable[[], Req]]] = [
        (3, "bad date", lambda: ("GET", "/search", {"params": {"q": "diabetes", "date": rng.choice(["2026-13-45", "garbage", "2026-02-30"])}})),
        (2, "bad offset", lambda: ("GET", rng.choice(["/search", "/fhir/ValueSet/$expand"]),
                                   {"params": {"q": "diabetes", "url": VS, "offset": str(10 ** 23)}})),
        (2, "nested [", lambda: ("POST", rng.choice(["/claims/check", "/fhir/CodeSystem/$lookup"]),
                                 {"content": b"[" * 50_000, "headers": {"content-type": "application/json"}})),
        (2, "0.9 MB junk parameter", lambda: ("POST", "/fhir/CodeSystem/$lookup", {"json": params(
            ("system", "valueUri", ICD10CM), ("code", "valueCode", code()), ("junk", "valueString", junk))})),
        (2, "990-word filter", lambda: ("POST", "/fhir/ValueSet/$expand", {"json": params(
            ("url", "valueUri", VS), ("filter", "valueString", " ".join(rng.choice("aeiou") for _ in range(990))))})),
        (1, "body over cap", lambda: ("POST", "/claims/check", {"content": b" " * 1_200_000,
                                                                "headers": {"content-type": "application/json"}})),
        (1, "URI over cap", lambda: ("GET", "/identify", {"params": {"q": "E" * 5000}})),
        (2, "invalid JSON", lambda: ("POST", rng.choice(["/claims/check", "/fhir/CodeSystem/$lookup"]),
                                     {"content": b'{"resourceType": "Par', "headers": FHIR_JSON})),
        (1, "random bytes", lambda: ("POST", rng.choice(["/claims/check", "/fhir/ValueSet/$expand"]),
                                     {"content": rng.randbytes(rng.randrange(1, 5000)), "headers": FHIR_JSON})),
        (1, "wrong content type", lambda: ("POST", "/fhir/CodeSystem/$lookup", {"content": b"<xml/>",
                                                                                "headers": {"content-type": "application/xml"}})),
        (2, "Patient as claim", lambda: ("POST", "/claims/check", {"json": {"resourceType": "Patient", "id": "p"}})),
        (1, "unknown code/system", lambda: ("GET", "/fhir/CodeSystem/$lookup", {"params": {"system": rng.choice([ICD10CM, "urn:x"]),
                                                                                           "code": rng.choice(["E11.657", "!!", ""])}})),
        (6, "random JSON", lambda: ("POST", rng.choice(["/claims/check", "/fhir/CodeSystem/$lookup", "/fhir/ValueSet/$expand",
                                                       "/fhir/CodeSystem/$validate-code", "/fhir/CodeSystem/$subsumes"]),
                                    {"content": json.dumps(random_json(rng)).encode(), "headers": FHIR_JSON})),
        (2, "random query", lambda: ("GET", rng.choice(["/search", "/fhir/ValueSet/$expand", "/codes", "/fhir/CodeSystem/$lookup"]),
                                     {"params": {rng.choice(["q", "url", "prefix", "code", "limit", "offset", "count", "date"]):
                                                 str(random_json(rng))[:300] for _ in range(3)}})),
    ]
    return ok + bad, len(ok)


async def run(base: str, mix: list[tuple[float, str, Callable[[], Req]]], n_ok: int, seconds: float,
              concurrency: int, rng: random.Random, tick: Callable[[float], None]) -> dict[str, Any]:
    weights = [w for w, _, _ in mix]
    status: dict[str, Counter[int]] = defaultdict(Counter)
    lat: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    dropped = Counter()
    client_kinds = {label for _, label, _ in mix[n_ok:]}
    deadline = time.monotonic() + seconds
    next_tick = time.monotonic() + 30

    async def worker() -> None:
        nonlocal next_tick
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            while time.monotonic() < deadline:
                _, label, make = rng.choices(mix, weights)[0]
                method, path, kw = make()
                t = time.perf_counter()
                try:
                    r = await client.request(method, path, **kw)
                    status[label][r.status_code] += 1
                except httpx.HTTPError as exc:
                    dropped[f"{label}: {type(exc).__name__}"] += 1
                    continue
                lat.append(time.perf_counter() - t)
                by_kind[label].append(lat[-1])
                if time.monotonic() >= next_tick:
                    next_tick += 30
                    tick(deadline - time.monotonic())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    lat.sort()
    return {"status": status, "lat": lat, "dropped": dropped, "client_kinds": client_kinds, "by_kind": by_kind}


def warm_with_wrk(base: str, codes: list[str], words: list[str], seconds: float) -> None:
    """Fill the server's bounded caches before the RSS baseline: $lookup over every code and
    /search, driven by wrk (benchmarks/server.py installs it) for ``seconds``; skipped without wrk."""
    import shutil

    wrk = shutil.which("wrk")
    if not wrk:
        print("  (wrk not found: warm-up with the Python mix only)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from server import run_wrk

    tmp = Path(tempfile.mkdtemp(prefix="medcodes-soak-"))
    sys_q = urllib.parse.quote(ICD10CM, safe="")
    (tmp / "lookup.txt").write_text("".join(f"/fhir/CodeSystem/$lookup?system={sys_q}&code={c}\n" for c in codes))
    (tmp / "search.txt").write_text("".join(f"/search?q={urllib.parse.quote(a + ' ' + b)}\n"
                                            for a, b in zip(words, words[7:] + words[:7])))
    for name in ("lookup.txt", "search.txt"):
        r = run_wrk(wrk, base, tmp / name, max(5.0, seconds / 2), 16)
        print(f"  warm-up {name[:-4]}: {r['requests']:,} requests ({r['rps']:.0f}/s) by wrk", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=os.environ.get("MEDCODES_HOME"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds of wrk load over every code and /search before the RSS baseline (caches fill)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args()
    minutes = min(args.minutes, 60.0)
    rng = random.Random(args.seed)
    codes, words = workload(args.home)
    mix, n_ok = make_mix(codes, words, rng)

    port = free_port()
    env = dict(os.environ, **({"MEDCODES_HOME": args.home} if args.home else {}))
    log = Path(tempfile.mkstemp(prefix="medcodes-soak-", suffix=".log")[1])
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "medcodes.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.3)
        rss_start = rss_mb(proc.pid)
        print(f"soak: {minutes:g} min after a {args.warmup:g} s warm-up, {args.concurrency} keep-alive clients, "
              f"seed {args.seed}; {len(codes):,} billable ICD-10-CM codes rotating; server {base} (1 worker, "
              f"defaults); RSS at start {rss_start:.0f} MB", flush=True)
        warm_with_wrk(base, codes, words, args.warmup)
        asyncio.run(run(base, mix, n_ok, 20, args.concurrency, rng, lambda left: None))
        rss_warm = rss_mb(proc.pid)
        print(f"after warm-up: RSS {rss_warm:.0f} MB", flush=True)
        samples: list[float] = []

        def tick(left: float) -> None:
            samples.append(rss_mb(proc.pid))
            print(f"  {max(0.0, left):5.0f} s left: RSS {samples[-1]:.0f} MB", flush=True)

        t0 = time.monotonic()
        res = asyncio.run(run(base, mix, n_ok, minutes * 60, args.concurrency, rng, tick))
        elapsed = time.monotonic() - t0
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    total = sum(sum(c.values()) for c in res["status"].values())
    print(f"\n{total:,} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s)")
    print(f"{'kind':26} {'count':>8} {'p50 ms':>8}  status codes")
    for label in [lb for _, lb, _ in mix]:
        c = res["status"].get(label, Counter())
        kl = sorted(res["by_kind"].get(label, [])) or [float("nan")]
        print(f"{label:26} {sum(c.values()):8,} {1000 * kl[len(kl) // 2]:8.1f}  "
              + ", ".join(f"{k}: {v:,}" for k, v in sorted(c.items())))
    all_codes: Counter[int] = Counter()
    for c in res["status"].values():
        all_codes.update(c)
    client_5xx = sum(v for lb, c in res["status"].items() if lb in res["client_kinds"] for k, v in c.items() if k >= 500)
    any_5xx = sum(v for k, v in all_codes.items() if k >= 500)
    lat = res["lat"]
    text = log.read_text(errors="replace")
    print(f"status codes overall: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(all_codes.items())))
    print(f"5xx to client mistakes: {client_5xx} (target 0); 5xx overall: {any_5xx}; "
          f"dropped connections: {sum(res['dropped'].values())} {dict(res['dropped']) or ''}")
    if lat:
        print(f"latency p50 {1000 * lat[len(lat) // 2]:.1f} ms, p99 {1000 * lat[int(len(lat) * 0.99)]:.1f} ms "
              f"(Python client on the same cores)")
    change = (rss_end / rss_warm - 1) * 100
    print(f"RSS: start {rss_start:.0f} MB, after warm-up {rss_warm:.0f} MB, end {rss_end:.0f} MB "
          f"({change:+.0f}% over the soak; target within 20%: {'MET' if abs(change) <= 20 else 'MISSED'}); "
          f"samples every 30 s: {', '.join(f'{s:.0f}' for s in samples)}")
    print(f"server log: {text.count('Traceback')} tracebacks, {text.count('internal error')} internal errors "
          f"({log})")


if __name__ == "__main__":
    main()
