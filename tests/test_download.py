"""The downloader end to end against a local HTTP server on 127.0.0.1.

The server serves ../shared/data under the official URL paths of the
catalogue (each catalogue file's path -> the shared file of the same name; a
zip whose members are shipped loose in shared/data is zipped into a temp dir
by the test). Faults are injected per path: 404, 503, a connection cut after
N bytes, a truncated body with an honest Content-Length, other bytes (wrong
checksum). Every failure must be one line naming the URL or file and leave
the installed store as it was.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from medcodes import catalogue
from medcodes.download import DownloadError, RetryPolicy, download_release, fetch_release, mirror_url
from medcodes.errors import MedcodesError
from medcodes.model import Concept, ReleaseBuild
from medcodes.store import Store

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, timeout=10)


# ----------------------------------------------------------------------------- the server
@dataclass
class Fault:
    kind: str                  # cut | truncate | status | replace
    times: int = 10**9         # how many requests it applies to
    cut_after: int = 0         # cut: bytes sent before the connection is closed
    status: int = 404          # status: the HTTP status to answer
    body: bytes = b""          # replace: what to serve instead


@dataclass
class Mirror:
    routes: dict[str, Path] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)   # (path, Range header)
    url: str = ""


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            mirror.log.append((self.path, self.headers.get("Range")))
            fault = mirror.faults.get(self.path)
            if fault and fault.times > 0:
                fault.times -= 1
            else:
                fault = None
            if fault and fault.kind == "status":
                return self._plain(fault.status)
            src = mirror.routes.get(self.path)
            if src is None:
                return self._plain(404)
            data = fault.body if fault and fault.kind == "replace" else src.read_bytes()
            start = self._range_start()
            if fault and fault.kind == "truncate":
                data = data[: len(data) // 2]
            if start:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if fault and fault.kind == "cut":
                self.wfile.write(body[: fault.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _range_start(self) -> int:
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and rng.endswith("-"):
                return int(rng[6:-1])
            return 0

        def _plain(self, status: int) -> None:
            msg = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

    return Handler


def _routes(shared: Path, workdir: Path) -> dict[str, Path]:
    """Official path -> file to serve, for every catalogue file we can serve from shared/data."""
    by_name: dict[str, Path] = {}
    for p in shared.rglob("*"):
        if p.is_file():
            by_name.setdefault(p.name, p)
    routes: dict[str, Path] = {}
    for entry in catalogue.releases():
        for f in entry.files:
            if f.name in by_name:
                routes[f.path] = by_name[f.name]
            elif f.members and all(m in by_name for m in f.members):
                built = workdir / f.name      # zipped here from the loose agency members (temp only)
                if not built.exists():
                    with zipfile.ZipFile(built, "w", zipfile.ZIP_DEFLATED) as zf:
                        for m in f.members:
                            zf.write(by_name[m], m)
                routes[f.path] = built
    return routes


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory) -> Iterator[Mirror]:
    mirror = Mirror(routes=_routes(shared_data, tmp_path_factory.mktemp("mirror")))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield mirror
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def mirror(server: Mirror) -> Iterator[Mirror]:
    server.faults.clear()
    server.log.clear()
    yield server
    server.faults.clear()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store holding one tiny SYNTHETIC release, so 'left as it was' has something to compare."""
    st = Store(tmp_path / "home")
    st.install(ReleaseBuild(
        system="hcpcs", release="synthetic", label="synthetic test release (not agency data)",
        effective_from=_dt.date(1999, 1, 1), effective_to=_dt.date(1999, 12, 31), sources=[],
        concepts=[Concept("Z9999", "synthetic row", "code", True)], counts={"code": 1}))
    return st


def _snapshot(st: Store) -> dict[str, str]:
    return {str(p.relative_to(st.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(st.root.rglob("*")) if p.is_file()}


def _path(system: str, release: str, i: int = 0) -> str:
    return catalogue.get(system, release).files[i].path


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_covers_the_issue_systems() -> None:
    cm = {e.release for e in catalogue.releases("icd10cm")}
    assert {"2025", "2026", "2026-04", "2027"} <= cm
    assert {"2025", "2026", "2027"} <= {e.release for e in catalogue.releases("icd10pcs")}
    hc = {e.release for e in catalogue.releases("hcpcs")}
    assert {f"{y}-{m:02d}" for y in range(2019, 2027) for m in (1, 4, 7, 10)} <= hc
    assert catalogue.get("icd9cm", "v32").files[0].members[0] == "CMS32_DESC_LONG_DX.txt"
    assert catalogue.get(catalogue.GEM_SYSTEM, "gem-2018").files[0].url.startswith("https://ftp.cdc.gov/")
    for e in catalogue.releases():
        for f in e.files:
            assert f.url.startswith("https://") and (".cms.gov/" in f.url or ".cdc.gov/" in f.url), f.url
            assert f.sha256 is None or f.checksum_from, f.url   # every checksum says where it is from


def test_catalogue_dates_follow_the_agency_calendars() -> None:
    fy26 = catalogue.get("icd10cm", "2026")
    assert (fy26.effective_from, fy26.effective_to) == (_dt.date(2025, 10, 1), _dt.date(2026, 3, 31))
    assert catalogue.in_effect("icd10cm", _dt.date(2026, 4, 1)).release == "2026-04"
    assert catalogue.in_effect("icd10cm", _dt.date(2026, 10, 1)).release == "2027"
    assert catalogue.in_effect("hcpcs", _dt.date(2020, 5, 17)).release == "2020-04"
    assert catalogue.in_effect("hcpcs", _dt.date(2018, 5, 17)) is None
    # no gaps, no overlaps within a system
    for system in ("icd10cm", "icd10pcs", "hcpcs"):
        entries = catalogue.releases(system)
        for a, b in zip(entries, entries[1:]):
            assert a.effective_to + _dt.timedelta(days=1) == b.effective_from, (a.release, b.release)


def test_catalogue_sizes_match_the_shared_copies(shared_data: Path) -> None:
    """Where the catalogue knows a size/sha256 of a file we hold, our copy has it."""
    checked = 0
    for e in catalogue.releases():
        for f in e.files:
            hits = list(shared_data.rglob(f.name))
            if hits and f.sha256:
                data = hits[0].read_bytes()
                assert (len(data), hashlib.sha256(data).hexdigest()) == (f.size, f.sha256), f.name
                checked += 1
    # CM 2025/2026, PCS 2025/2026, HCPCS 2019 (+ layout), 2020 and 2026-01, Dx GEMs, conversion table,
    # POA-exempt list, guidelines PDF
    assert checked == 12
    with pytest.raises(MedcodesError, match="icd10cm 1999: not in the catalogue"):
        catalogue.get("icd10cm", "1999")


def test_mirror_url_keeps_the_official_path() -> None:
    url = "https://www.cms.gov/files/zip/2026-code-descriptions-tabular-order.zip"
    assert mirror_url(url, "http://127.0.0.1:9/m/") == "http://127.0.0.1:9/m/files/zip/2026-code-descriptions-tabular-order.zip"
    assert mirror_url(url, None) == url


# ----------------------------------------------------------------------------- success paths
def test_fetch_checks_size_and_sha256(mirror: Mirror, store: Store, shared_data: Path) -> None:
    rep = fetch_release(store, "icd10cm", "2026", base_url=mirror.url, progress=False, retry=FAST)
    got = rep.files[0]
    assert got.name == "2026-code-descriptions-tabular-order.zip"
    assert got.read_bytes() == (shared_data / "icd10cm/2026" / got.name).read_bytes()
    assert not list(got.parent.glob("*.part"))
    # a second fetch finds the verified file and asks the server for nothing
    mirror.log.clear()
    fetch_release(store, "icd10cm", "2026", base_url=mirror.url, progress=False, retry=FAST)
    assert mirror.log == []


def test_mirror_from_environment(mirror: Mirror, store: Store, monkeypatch) -> None:
    monkeypatch.setenv("MEDCODES_MIRROR", mirror.url)
    rep = fetch_release(store, "hcpcs", "2020-01", progress=False, retry=FAST)
    assert [p.name for p in rep.files] == ["2020-Alpha-Numeric-HCPCS-File.zip"]


def test_progress_bar_does_not_break_the_download(mirror: Mirror, store: Store, capsys) -> None:
    fetch_release(store, "hcpcs", "2019-01", base_url=mirror.url, progress=True, retry=FAST)
    assert "2019-Alpha-Numeric-HCPCS-File.zip" in capsys.readouterr().err


def test_cut_connection_resumes_with_range(mirror: Mirror, store: Store) -> None:
    path = _path("icd10cm", "2025")
    mirror.faults[path] = Fault("cut", times=1, cut_after=700_000)
    rep = fetch_release(store, "icd10cm", "2025", base_url=mirror.url, progress=False, retry=FAST)
    assert rep.resumed == 1 and rep.retries == 1
    assert [r for p, r in mirror.log if p == path] == [None, "bytes=700000-"]
    assert hashlib.sha256(rep.files[0].read_bytes()).hexdigest() == catalogue.get("icd10cm", "2025").files[0].sha256


def test_5xx_is_retried(mirror: Mirror, store: Store) -> None:
    path = _path("hcpcs", "2020-01")
    mirror.faults[path] = Fault("status", times=2, status=503)
    rep = fetch_release(store, "hcpcs", "2020-01", base_url=mirror.url, progress=False, retry=FAST)
    assert rep.retries == 2 and rep.files[0].exists()


# ----------------------------------------------------------------------------- failures
def _fails(store: Store, system: str, release: str, base: str, match: str) -> str:
    before = _snapshot(store)
    with pytest.raises(DownloadError, match=match) as err:
        download_release(store, system, release, base_url=base, progress=False, retry=FAST)
    msg = str(err.value)
    assert "\n" not in msg
    assert _snapshot(store) == before
    assert [i.release for i in store.releases()] == ["synthetic"]
    return msg


def test_404_is_one_line(mirror: Mirror, store: Store) -> None:
    # the FY2027 files are not in shared/data: the mirror answers 404
    msg = _fails(store, "icd10cm", "2027", mirror.url, "HTTP 404")
    assert "/files/zip/2027-code-descriptions-tabular-order.zip" in msg
    assert len(mirror.log) == 1   # a 4xx is not retried


def test_connection_that_keeps_cutting_fails(mirror: Mirror, store: Store) -> None:
    path = _path("icd10cm", "2026")
    mirror.faults[path] = Fault("cut", cut_after=100_000)
    msg = _fails(store, "icd10cm", "2026", mirror.url, "failed after 3 attempts")
    assert path in msg
    ranges = [r for p, r in mirror.log if p == path]
    assert ranges == [None, "bytes=100000-", "bytes=200000-"]    # each try resumed where the last stopped


def test_truncated_body_with_known_size(mirror: Mirror, store: Store) -> None:
    mirror.faults[_path("icd10cm", "2026")] = Fault("truncate")
    msg = _fails(store, "icd10cm", "2026", mirror.url, "truncated")
    assert "2026-code-descriptions-tabular-order.zip is 1,102,492 bytes, expected 2,204,985" in msg
    assert not list((store.home / "downloads").rglob("*.part"))   # the bad file is not kept


def test_truncated_body_with_unknown_size(mirror: Mirror, store: Store) -> None:
    # the ICD-9-CM zip has no catalogued size: the zip itself must be checked
    assert catalogue.get("icd9cm", "v32").files[0].size is None
    mirror.faults[_path("icd9cm", "v32")] = Fault("truncate")
    _fails(store, "icd9cm", "v32", mirror.url, "icd-9-cm-v32-master-descriptions.zip is not a readable zip")


def test_wrong_checksum(mirror: Mirror, store: Store, shared_data: Path) -> None:
    good = (shared_data / "icd10cm/2026/2026-code-descriptions-tabular-order.zip").read_bytes()
    other = bytearray(good)
    other[1000] ^= 0xFF                       # same size, one byte off
    mirror.faults[_path("icd10cm", "2026")] = Fault("replace", body=bytes(other))
    _fails(store, "icd10cm", "2026", mirror.url, "sha256 .* does not match the catalogue's 55a9124a27ca")


def test_unknown_release_is_one_line(store: Store) -> None:
    with pytest.raises(MedcodesError, match=r"hcpcs 2030-01: not in the catalogue \(known: 2019-01"):
        download_release(store, "hcpcs", "2030-01", base_url="http://127.0.0.1:9", progress=False)


# ----------------------------------------------------------------------------- through to the store
def test_download_installs_through_the_parsers(mirror: Mirror, store: Store) -> None:
    rep = download_release(store, "hcpcs", "2020-01", base_url=mirror.url, progress=False, retry=FAST)
    assert [(s, r) for s, r, _c in rep.pull.installed] == [("hcpcs", "2020-01")]
    info = store.find("hcpcs", "2020-01")
    assert info.counts["codes"] == 6710 and info.counts["modifiers"] == 369   # the agency's own totals
    assert store.open("hcpcs", "2020-01").get("A4216")["title"] == \
        "Sterile water, saline and/or dextrose, diluent/flush, 10 ml"
    assert store.find("hcpcs", "synthetic") is not None                       # the rest is untouched
    # pulling again downloads nothing and rebuilds nothing
    mirror.log.clear()
    again = download_release(store, "hcpcs", "2020-01", base_url=mirror.url, progress=False, retry=FAST)
    assert mirror.log == [] and again.pull.unchanged == [("hcpcs", "2020-01")]


def test_hcpcs_2026_january_is_catalogued_and_installs_every_member(mirror: Mirror, store: Store,
                                                                    shared_data: Path) -> None:
    """pull knows the January 2026 zip's official URL, size and sha256 (SOURCES.md), and installs it."""
    entry = catalogue.get("hcpcs", "2026-01")
    (f,) = entry.files
    assert f.url == "https://www.cms.gov/files/zip/january-2026-alpha-numeric-hcpcs-file.zip"
    assert (f.size, f.sha256) == (2_519_574, "8f4a26de1eca89205be02fbe48cc899c6c5930cf5d4f6b8c5a227f64450157b0")
    import zipfile

    with zipfile.ZipFile(shared_data / "hcpcs/2026-jan/january-2026-alpha-numeric-hcpcs-file.zip") as zf:
        assert sorted(f.members) == sorted(zf.namelist())
    rep = download_release(store, "hcpcs", "2026-01", base_url=mirror.url, progress=False, retry=FAST)
    assert [(s, r) for s, r, _c in rep.pull.installed] == [("hcpcs", "2026-01")]
    info = store.find("hcpcs", "2026-01")
    assert (info.counts["codes"], info.counts["modifiers"]) == (8623, 383)
    assert len(info.sources) == 7          # every file of the zip went into the release


def test_download_of_a_zip_assembled_from_members(mirror: Mirror, store: Store) -> None:
    rep = download_release(store, "icd9cm", "v32", base_url=mirror.url, progress=False, retry=FAST)
    assert [(s, r) for s, r, _c in rep.pull.installed] == [("icd9cm", "v32")]
    assert store.find("icd9cm", "v32").effective_from == _dt.date(2014, 10, 1)


def test_download_of_an_ncci_quarter(mirror: Mirror, store: Store) -> None:
    # the CMS MUE and add-on code zips, assembled here from the loose agency files in shared/data
    entry = catalogue.get("ncci", "2026-q2")
    assert (entry.effective_from, entry.effective_to) == (_dt.date(2026, 4, 1), _dt.date(2026, 6, 30))
    assert catalogue.in_effect("ncci", _dt.date(2026, 7, 1)).release == "2026-q3"
    rep = download_release(store, "ncci", "2026-q2", base_url=mirror.url, progress=False, retry=FAST)
    assert [(s, r) for s, r, _c in rep.pull.installed] == [("ncci", "2026-q2")]
    info = store.find("ncci", "2026-q2")
    assert (info.counts["mue_practitioner"], info.counts["mue_outpatient_hospital"],
            info.counts["mue_dme_supplier"], info.counts["aoc"]) == (15095, 15045, 3083, 9000)
