"""Helpers for the server tests: FHIR validation with fhir.resources (R4B) and a live uvicorn server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
HCPCS_HTTPS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"


def fhir_valid(doc: dict[str, Any]) -> Any:
    """Parse ``doc`` with the fhir.resources R4B model of its resourceType (raises if invalid)."""
    from fhir.resources.R4B import get_fhir_model_class

    cls = get_fhir_model_class(doc["resourceType"])
    return cls.model_validate(doc)


def param(doc: dict[str, Any], name: str) -> Any:
    """The value of the first parameter ``name`` in a Parameters resource."""
    for p in doc["parameter"]:
        if p["name"] == name:
            for k, v in p.items():
                if k.startswith("value"):
                    return v
            return p.get("part")
    raise KeyError(name)


def props(doc: dict[str, Any], code: str) -> list[Any]:
    out = []
    for p in doc["parameter"]:
        if p["name"] == "property":
            parts = {q["name"]: q for q in p["part"]}
            if parts["code"]["valueCode"] == code:
                out.extend(v for k, v in parts["value"].items() if k.startswith("value"))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(home: Path, log_path: Path, env: dict[str, str] | None = None,
                workers: int = 1) -> Iterator[str]:
    """``medcodes serve`` on 127.0.0.1 (a subprocess), yielding its base URL; stopped afterwards."""
    port = free_port()
    full_env = dict(os.environ, MEDCODES_HOME=str(home), **(env or {}))
    cmd = [sys.executable, "-m", "medcodes.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--access-log"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(base + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 120 s")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
