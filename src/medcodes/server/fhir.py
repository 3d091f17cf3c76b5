"""FHIR R4 terminology operations over a :class:`~medcodes.Codebook`.

Pure functions: each takes a Codebook and the operation's input parameters
(:class:`Params`, from a query string or a ``Parameters`` resource) and
returns a FHIR resource as a plain ``dict`` (``Parameters``, ``ValueSet``,
``CodeSystem``, ``Bundle``...). Problems raise :class:`FhirError`, which the
HTTP layer turns into an ``OperationOutcome`` with its status code.

Code systems are named by their canonical URIs (``/work/shared/DOMAIN.md``);
each system's implicit all-codes value set is ``<uri>?fhir_vs``. A FHIR
``version`` is a medcodes release id (``2026``, ``2026-04``, ``2020-10``).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import __version__
from .. import systems as _systems
from ..errors import MedcodesError, NotFound, NotInstalled
from ..model import MAINTAINERS, SYSTEM_NAMES, ReleaseInfo, normalize_key
from ..store import ReleaseDB, row_attrs

FHIR_VERSION = "4.0.1"

#: Canonical FHIR code system URIs (DOMAIN.md), by medcodes system id.
SYSTEM_URIS: dict[str, str] = {
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd10pcs": "http://www.cms.gov/Medicare/Coding/ICD10",
    "hcpcs": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "icd9cm": "http://hl7.org/fhir/sid/icd-9-cm",
}
VS_SUFFIX = "?fhir_vs"

#: Other spellings accepted on input (never emitted).
_ALIASES = {"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs"}

#: Row kinds that structure a code system but are not codes (left out of value sets).
NON_CODE_KINDS = ("chapter", "block", "section", "body_system")

#: GEM ConceptMaps: (source system, target system) -> medcodes.mapping direction.
GEM_MAPS = {
    ("icd9cm", "icd10cm"): "i9-i10cm",
    ("icd10cm", "icd9cm"): "i10cm-i9",
    ("icd9cm", "icd10pcs"): "i9-i10pcs",
    ("icd10pcs", "icd9cm"): "i10pcs-i9",
}

OPERATION_DEFS = {
    "lookup": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
    "validate-code": "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
    "subsumes": "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes",
    "expand": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
    "vs-validate-code": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    "translate": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
}

MAX_EXPAND = 1000
DEFAULT_EXPAND = 100
#: $expand filter bounds: each word is a LIKE over every title, so the words are what cost
MAX_FILTER_CHARS = 200
MAX_FILTER_WORDS = 12
#: no value set has a million codes: a larger offset is a mistake, not a page
MAX_OFFSET = 1_000_000


_ONE_LINE = {10: "\\n", 13: "\\r"}


class FhirError(Exception):
    """An operation that cannot be answered: becomes an OperationOutcome with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        message = message.translate(_ONE_LINE)     # an echoed input ("system=\n") keeps the message one line
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def outcome(message: str, code: str = "invalid", severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message,
                       "details": {"text": message}}]}


# ---------------------------------------------------------------- systems
def system_for_uri(uri: str | None, what: str = "system") -> str:
    """medcodes system id for a canonical URI (https HCPCS spelling accepted); 404 when unknown."""
    if not uri:
        raise FhirError(400, "required", f"'{what}' is required")
    clean = uri.strip().rstrip("/")
    for sys_id, canon in SYSTEM_URIS.items():
        if clean == canon:
            return sys_id
    if clean in _ALIASES:
        return _ALIASES[clean]
    known = ", ".join(SYSTEM_URIS.values())
    raise FhirError(404, "not-found", f"{uri}: unknown code system (known: {known})")


def system_for_valueset(url: str | None) -> str:
    """The system whose implicit all-codes value set ``url`` is (``<uri>?fhir_vs``)."""
    if not url:
        raise FhirError(400, "required", "'url' (the value set, e.g. http://hl7.org/fhir/sid/icd-10-cm?fhir_vs) is required")
    base, sep, rest = url.partition("?")
    if not sep or rest != "fhir_vs":
        raise FhirError(404, "not-found", f"{url}: unknown value set (only the implicit all-codes value sets "
                                          "'<system uri>?fhir_vs' are served)")
    return system_for_uri(base, "url")


# ---------------------------------------------------------------- parameters
_SCALAR_TYPES = ("String", "Code", "Uri", "Canonical", "Url", "Boolean", "Integer", "UnsignedInt",
                 "PositiveInt", "Decimal", "DateTime", "Date", "Instant", "Id", "Markdown")
_COMPLEX_TYPES = ("Coding", "CodeableConcept")


@dataclass
class Params:
    """Operation input: name -> values (scalars as given, Coding/CodeableConcept as dicts)."""

    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        self.values.setdefault(name, []).append(value)

    def all(self, name: str) -> list[Any]:
        return self.values.get(name, [])

    def str(self, name: str) -> str | None:
        vals = self.all(name)
        if not vals:
            return None
        v = vals[0]
        if isinstance(v, dict):
            raise FhirError(400, "invalid", f"parameter '{name}' must be a simple value")
        return v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    def int(self, name: str, default: int, lo: int = 0, hi: int | None = None, clamp: bool = True) -> int:
        """An integer parameter: 400 below ``lo``; above ``hi`` cut to ``hi`` (``clamp``) or 400."""
        raw = self.str(name)
        if raw is None or raw == "":
            return default
        raw = raw.strip()
        if not (raw.isascii() and raw.lstrip("+-").isdigit()) or len(raw) > 19:
            raise FhirError(400, "invalid", f"parameter '{name}': {_cut(raw)!r} is not an integer"
                                            + (" in range" if raw.lstrip("+-").isdigit() else ""))
        n = int(raw)
        if n < lo:
            raise FhirError(400, "invalid", f"parameter '{name}' must be >= {lo}")
        if hi is not None and n > hi:
            if not clamp:
                raise FhirError(400, "invalid", f"parameter '{name}' must be <= {hi}")
            return hi
        return n

    def canonical(self) -> str:
        """The parameters as one canonical string (names sorted, values re-serialised): a cache key."""
        import orjson

        return orjson.dumps(sorted(self.values.items()), option=orjson.OPT_SORT_KEYS, default=str).decode()

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise FhirError(400, "invalid", f"parameter '{name}': {raw!r} is not a boolean")

    def coding(self, name: str) -> dict[str, Any] | None:
        vals = self.all(name)
        if not vals:
            return None
        v = vals[0]
        if not isinstance(v, dict):
            raise FhirError(400, "invalid", f"parameter '{name}' must be a Coding")
        return v

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> "Params":
        p = cls()
        for k, v in items:
            if k in ("coding", "codingA", "codingB"):
                # system|code (the FHIR token form) for a Coding in a query string
                system, bar, code = v.rpartition("|")
                p.add(k, {"system": system, "code": code} if bar else {"code": v})
            else:
                p.add(k, v)
        return p

    @classmethod
    def from_resource(cls, body: Any) -> "Params":
        """From a ``Parameters`` resource; 400 with a one-line reason when it is malformed."""
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(400, "structure", "the request body must be a FHIR Parameters resource")
        params = body.get("parameter", [])
        if not isinstance(params, list):
            raise FhirError(400, "structure", "Parameters.parameter must be a list")
        p = cls()
        for i, item in enumerate(params):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise FhirError(400, "structure", f"Parameters.parameter[{i}] needs a 'name'")
            p.add(item["name"], _param_value(item, i))
        return p


def _param_value(item: dict[str, Any], i: int) -> Any:
    found = [k for k in item if k.startswith("value")]
    if "resource" in item:
        if found:
            raise FhirError(400, "structure", f"Parameters.parameter[{i}] has both a value and a resource")
        return item["resource"]
    if len(found) != 1:
        raise FhirError(400, "structure", f"Parameters.parameter[{i}] ({item['name']}) needs exactly one value[x]")
    key = found[0]
    value = item[key]
    kind = key[5:]
    if kind in _COMPLEX_TYPES:
        if not isinstance(value, dict):
            raise FhirError(400, "structure", f"Parameters.parameter[{i}].{key} must be an object")
        if kind == "CodeableConcept":
            codings = value.get("coding") or []
            if not isinstance(codings, list) or not codings or not isinstance(codings[0], dict):
                raise FhirError(400, "structure", f"Parameters.parameter[{i}].{key} has no coding")
            return codings[0]
        return value
    if kind not in _SCALAR_TYPES or isinstance(value, (dict, list)):
        raise FhirError(400, "structure", f"Parameters.parameter[{i}]: unsupported {key}")
    return value


# ---------------------------------------------------------------- release helpers
def _release(book: Any, system: str, version: str | None, date: str | None) -> ReleaseInfo:
    """The release a request names (``version``) or the one in effect on ``date`` / today."""
    try:
        infos = book.releases(system)
        if not infos:
            book.release_for(system)  # raises NotInstalled with the hint
        if version:
            for info in infos:
                if info.release == version:
                    return info
            have = ", ".join(i.release for i in infos)
            raise FhirError(404, "not-found", f"{SYSTEM_URIS[system]} version {version!r} is not installed "
                                              f"(installed: {have})")
        return book.release_for(system, _date(date))
    except NotInstalled as exc:
        raise FhirError(404, "not-found", str(exc)) from None


def _date(raw: str | None) -> _dt.date | None:
    if not raw:
        return None
    try:
        day = raw[:10]
        if len(day) == 10 and day[4] == "-" and day[7] == "-":
            return _dt.date.fromisoformat(day)
    except ValueError:
        pass
    raise FhirError(400, "invalid", f"date: {_cut(raw)!r} is not a date (YYYY-MM-DD)")


def _cut(text: str, n: int = 60) -> str:
    """An echo of user input, shortened so an error message stays one readable line."""
    return text if len(text) <= n else text[: n - 3] + "..."


def _db(book: Any, info: ReleaseInfo) -> ReleaseDB:
    return book.store.open(info.system, info.release)


def _find_row(db: ReleaseDB, system: str, code: str) -> Any:
    """The concept row of ``code`` (any of the system's readings of it), or None."""
    key = normalize_key(code)
    if not key or not key.isalnum():
        return None
    row = db.get(key)
    if row is not None:
        return row
    for reading in _systems.module(system).readings(key):
        row = db.get(reading.key)
        if row is not None:
            return row
    return None


def _is_inactive(row: Any) -> bool:
    attrs = row_attrs(row)
    return attrs.get("status") == "discontinued"


def _not_selectable(row: Any) -> bool:
    return row["billable"] == 0 and not _is_inactive(row)


def _code_and_system(p: Params, code_name: str = "code", coding_name: str = "coding",
                     system_name: str = "system") -> tuple[str | None, str | None, str | None]:
    coding = p.coding(coding_name) or {}
    code = p.str(code_name) or coding.get("code")
    system = p.str(system_name) or coding.get("system") or None
    version = p.str("version") or coding.get("version")
    return code, system, version


# ---------------------------------------------------------------- $lookup
LOOKUP_PROPERTIES = ("parent", "child", "billable", "notSelectable", "inactive", "kind", "note")


def lookup(book: Any, p: Params) -> dict[str, Any]:
    """CodeSystem/$lookup: display, version, designations and properties of one code."""
    code, uri, version = _code_and_system(p)
    if not code:
        raise FhirError(400, "required", "$lookup: 'code' (or 'coding') is required")
    system = system_for_uri(uri)
    info = _release(book, system, version, p.str("date"))
    try:
        rec = book.lookup(code, system=system, date=info.effective_from)
    except NotFound as exc:
        raise FhirError(404, "not-found", f"{SYSTEM_URIS[system]}: {exc}") from None
    except MedcodesError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    if rec.release != info.release:  # pragma: no cover - two releases starting the same day
        raise FhirError(404, "not-found", f"{code}: not found in version {info.release}")
    wanted = set(p.all("property")) or set(LOOKUP_PROPERTIES)
    out = [_str("name", SYSTEM_NAMES.get(system, system)), _str("version", rec.release),
           _str("display", rec.title)]
    if rec.short_title and rec.short_title != rec.title:
        out.append({"name": "designation", "part": [
            {"name": "use", "valueCoding": {"system": "urn:medcodes:designation-use", "code": "short",
                                            "display": "Short description (agency file)"}},
            {"name": "value", "valueString": rec.short_title}]})
    gap = _gap(book, system, info, p.str("date"))
    if gap and "note" in wanted:
        out.append({"name": "property", "part": [{"name": "code", "valueCode": "note"},
                                                 {"name": "value", "valueString": f"release: {gap}"}]})
    out.extend(_lookup_properties(rec, wanted))
    return {"resourceType": "Parameters", "parameter": out}


def _gap(book: Any, system: str, info: ReleaseInfo, date: str | None) -> str | None:
    """The note for a date no installed release covers (the answer then comes from ``info``, the nearest)."""
    day = _date(date)
    if day is None or info.covers(day):
        return None
    return book.gap_note(system, day, info)


def _lookup_properties(rec: Any, wanted: set[str]) -> list[dict[str, Any]]:
    """The ``property`` parameters of a $lookup (the hot path of the service: plain appends)."""
    props: list[dict[str, Any]] = []
    add = props.append

    def prop(code: str, value: dict[str, Any]) -> None:
        add({"name": "property", "part": [{"name": "code", "valueCode": code}, value]})

    if rec.ancestors and "parent" in wanted:
        prop("parent", {"name": "value", "valueCode": rec.ancestors[-1]["code"]})
    if "child" in wanted:
        for child in rec.children:
            add({"name": "property", "part": [{"name": "code", "valueCode": "child"},
                                              {"name": "value", "valueCode": child["code"]}]})
    inactive = (rec.attrs or {}).get("status") == "discontinued"
    if rec.billable is not None:
        if "billable" in wanted:
            prop("billable", {"name": "value", "valueBoolean": bool(rec.billable) and not inactive})
        if "notSelectable" in wanted:
            prop("notSelectable", {"name": "value", "valueBoolean": not rec.billable and not inactive})
    if "inactive" in wanted:
        prop("inactive", {"name": "value", "valueBoolean": inactive})
    if "kind" in wanted:
        prop("kind", {"name": "value", "valueCode": rec.kind})
    if "note" in wanted:
        for note in rec.notes[:200]:
            text = note.get("text")
            if text:
                add({"name": "property", "part": [{"name": "code", "valueCode": "note"},
                                                  {"name": "value", "valueString": f"{note.get('kind', 'note')}: {text}"}]})
    return props


def _str(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "valueString": value}


# ---------------------------------------------------------------- $validate-code
def validate_code(book: Any, p: Params, valueset: bool = False) -> dict[str, Any]:
    """CodeSystem/$validate-code and ValueSet/$validate-code over the implicit all-codes value set."""
    code, uri, version = _code_and_system(p)
    if valueset:
        vs_system = system_for_valueset(p.str("url"))
        uri = uri or SYSTEM_URIS[vs_system]
        version = p.str("systemVersion") or version
    else:
        uri = p.str("url") or uri
    if not code:
        raise FhirError(400, "required", "$validate-code: 'code' (or 'coding' / 'codeableConcept') is required")
    if valueset:
        try:
            system = system_for_uri(uri)
        except FhirError:
            return _validation(False, f"{uri}: not in value set {p.str('url')}", code, uri, None)
        if system != vs_system:
            return _validation(False, f"{uri}|{code}: not in value set {p.str('url')}", code, uri, None)
    else:
        system = system_for_uri(uri, "url")
    info = _release(book, system, version, p.str("date"))
    db = _db(book, info)
    row = _find_row(db, system, code)
    canon = SYSTEM_URIS[system]
    if row is None or (valueset and row["kind"] in NON_CODE_KINDS):
        reason = book.validate(code, system=system, date=info.effective_from).reason
        gap = _gap(book, system, info, p.str("date"))
        return _validation(False, f"Unknown code '{code}' in {canon} version {info.release}: {reason}"
                           + (f". {gap}" if gap else ""), code, canon, info.release)
    display = p.str("display")
    result = True
    message = None
    if display and display.strip().lower() not in {row["title"].lower(), (row["short_title"] or "").lower()}:
        result = False
        message = f"display {display!r} does not match {row['title']!r} for {canon}|{row['code']}"
    elif _is_inactive(row):
        message = f"{row['code']} is inactive (discontinued) in {SYSTEM_NAMES[system]} release {info.release}"
    elif row["billable"] == 0:
        message = f"{row['code']} is a header, not billable: use a more specific code"
    gap = _gap(book, system, info, p.str("date"))
    if gap:
        message = f"{message}. {gap}" if message else gap
    return _validation(result, message, row["code"], canon, info.release, row["title"])


def _validation(result: bool, message: str | None, code: str, system: str | None, version: str | None,
                display: str | None = None) -> dict[str, Any]:
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    if message:
        out.append({"name": "message", "valueString": message})
    if display:
        out.append({"name": "display", "valueString": display})
    out.append({"name": "code", "valueCode": code})
    if system:
        out.append({"name": "system", "valueUri": system})
    if version:
        out.append({"name": "version", "valueString": version})
    return {"resourceType": "Parameters", "parameter": out}


# ---------------------------------------------------------------- $subsumes
def subsumes(book: Any, p: Params) -> dict[str, Any]:
    """CodeSystem/$subsumes: equivalent, subsumes, subsumed-by or not-subsumed (is-a = the hierarchy)."""
    coding_a, coding_b = p.coding("codingA") or {}, p.coding("codingB") or {}
    code_a = p.str("codeA") or coding_a.get("code")
    code_b = p.str("codeB") or coding_b.get("code")
    if not code_a or not code_b:
        raise FhirError(400, "required", "$subsumes: 'codeA' and 'codeB' (or 'codingA' and 'codingB') are required")
    uri = p.str("system") or coding_a.get("system") or coding_b.get("system")
    system = system_for_uri(uri)
    for c in (coding_a, coding_b):
        if c.get("system") and system_for_uri(c["system"]) != system:
            raise FhirError(400, "invalid", "$subsumes: both codings must be in the same code system")
    info = _release(book, system, p.str("version"), p.str("date"))
    db = _db(book, info)
    rows = []
    for code in (code_a, code_b):
        row = _find_row(db, system, code)
        if row is None:
            raise FhirError(404, "not-found", f"{SYSTEM_URIS[system]}: code {code!r} not found "
                                              f"in version {info.release}")
        rows.append(row)
    a, b = rows
    if a["key"] == b["key"]:
        result = "equivalent"
    elif a["key"] in {r["key"] for r in db.ancestors(b)}:
        result = "subsumes"
    elif b["key"] in {r["key"] for r in db.ancestors(a)}:
        result = "subsumed-by"
    else:
        result = "not-subsumed"
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": result}]}


# ---------------------------------------------------------------- $expand
def check_expand(p: Params) -> None:
    """Refuse (400 too-costly) a $expand filter longer than the bounds before any work is done."""
    text = (p.str("filter") or "").strip()
    if len(text) > MAX_FILTER_CHARS:
        raise FhirError(400, "too-costly", f"$expand: filter is {len(text)} characters; at most {MAX_FILTER_CHARS}")
    words = set(text.lower().split())
    if len(words) > MAX_FILTER_WORDS:
        raise FhirError(400, "too-costly", f"$expand: filter has {len(words)} words; at most {MAX_FILTER_WORDS}")


def expand(book: Any, p: Params) -> dict[str, Any]:
    """ValueSet/$expand of an implicit all-codes value set, with ``filter``, ``count`` and ``offset``."""
    check_expand(p)
    if p.all("valueSet"):
        raise FhirError(400, "not-supported", "$expand: only the implicit value sets (url=<system>?fhir_vs) "
                                              "can be expanded; a valueSet resource is not supported")
    url = p.str("url")
    system = system_for_valueset(url)
    version = p.str("systemVersion") or p.str("version") or p.str("valueSetVersion")
    if version and "|" in version:
        version = version.rpartition("|")[2]
    info = _release(book, system, version, p.str("date"))
    count = p.int("count", DEFAULT_EXPAND, 0, MAX_EXPAND)
    offset = p.int("offset", 0, 0, MAX_OFFSET, clamp=False)
    text = (p.str("filter") or "").strip()
    active_only = p.bool("activeOnly", False)
    db = _db(book, info)
    where, args = _expand_where(text, active_only)
    total = db.conn.execute(f"SELECT COUNT(*) FROM concept WHERE {where}", args).fetchone()[0]
    rows = db.conn.execute(f"SELECT key, code, title, billable, attrs FROM concept WHERE {where} "
                           "ORDER BY seq LIMIT ? OFFSET ?", [*args, count, offset]).fetchall()
    canon = SYSTEM_URIS[system]
    contains = []
    for row in rows:
        item: dict[str, Any] = {"system": canon, "version": info.release, "code": row["code"],
                                "display": row["title"]}
        if _is_inactive(row):
            item["inactive"] = True
        elif row["billable"] == 0:
            item["abstract"] = True
        contains.append(item)
    params: list[dict[str, Any]] = [{"name": "version", "valueUri": f"{canon}|{info.release}"},
                                    {"name": "count", "valueInteger": count},
                                    {"name": "offset", "valueInteger": offset}]
    if text:
        params.insert(0, {"name": "filter", "valueString": text})
    expansion: dict[str, Any] = {"identifier": f"urn:uuid:{uuid.uuid4()}",
                                 "timestamp": _now(), "total": total, "offset": offset, "parameter": params}
    if contains:
        expansion["contains"] = contains
    return {"resourceType": "ValueSet", "url": canon + VS_SUFFIX, "version": info.release,
            "name": f"{SYSTEM_NAMES[system].replace(' ', '').replace('-', '')}AllCodes",
            "title": f"All {SYSTEM_NAMES[system]} codes", "status": "active",
            "expansion": expansion}


def _expand_where(text: str, active_only: bool) -> tuple[str, list[Any]]:
    marks = ",".join("?" * len(NON_CODE_KINDS))
    clauses = [f"kind NOT IN ({marks})"]
    args: list[Any] = list(NON_CODE_KINDS)
    if active_only:
        clauses.append("(attrs IS NULL OR attrs NOT LIKE '%\"status\":\"discontinued\"%')")
    if text:
        key = normalize_key(text)
        words = list(dict.fromkeys(w for w in text.lower().split() if w))  # each word once
        word_sql = " AND ".join("lower(title) LIKE ?" for _ in words)
        if key.isalnum():
            clauses.append(f"(key >= ? AND key < ? OR ({word_sql}))")
            args.extend([key, key + "\uffff"])
        else:
            clauses.append(f"({word_sql})")
        args.extend(f"%{_like_escape(w)}%" for w in words)
    return " AND ".join(clauses), args


def _like_escape(word: str) -> str:
    return word.replace("%", "").replace("_", "")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- $translate
def translate(book: Any, p: Params, mapping: Any) -> dict[str, Any]:
    """ConceptMap/$translate with the GEMs: ICD-9-CM <-> ICD-10-CM / ICD-10-PCS."""
    code, uri, _version = _code_and_system(p)
    if not code:
        raise FhirError(400, "required", "$translate: 'code' (or 'coding') is required")
    source = system_for_uri(uri)
    target_uri = p.str("targetsystem") or p.str("targetSystem")
    if p.bool("reverse", False):
        raise FhirError(400, "not-supported", "$translate: reverse is not supported; swap system and targetsystem")
    target = system_for_uri(target_uri) if target_uri else _default_target(source)
    if (source, target) not in GEM_MAPS:
        raise FhirError(404, "not-found", f"no General Equivalence Mapping from {SYSTEM_URIS[source]} "
                                          f"to {SYSTEM_URIS[target]}")
    try:
        result = mapping.map_code(book, code, to=target)
    except NotFound as exc:
        raise FhirError(404, "not-found", str(exc)) from None
    except MedcodesError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    direction = GEM_MAPS[(source, target)]
    matches = []
    for gem in result.maps:
        if gem.direction != direction or gem.no_map:
            continue
        for t in gem.targets:
            matches.append(_match(t, target, gem, None))
        for scen in gem.scenarios:
            for cl in scen.choice_lists:
                for t in cl.targets:
                    matches.append(_match(t, target, gem, (scen.scenario, cl.choice_list)))
    message = (f"{len(matches)} GEM target(s) for {code} ({direction}, GEM release {result.release})" if matches
               else f"{code}: no GEM target in {SYSTEM_NAMES[target]} ({direction}, GEM release {result.release})")
    return {"resourceType": "Parameters",
            "parameter": [{"name": "result", "valueBoolean": bool(matches)},
                          {"name": "message", "valueString": message}, *matches]}


def _match(t: Any, target: str, gem: Any, combo: tuple[int, int] | None) -> dict[str, Any]:
    """One $translate match: GEM approximate flag -> inexact, else equivalent; combinations say so."""
    coding: dict[str, Any] = {"system": SYSTEM_URIS[target], "code": t.code}
    if t.title:
        coding["display"] = t.title
    equivalence = "inexact" if t.approximate else "equivalent"
    parts: list[dict[str, Any]] = [{"name": "equivalence", "valueCode": equivalence},
                                   {"name": "concept", "valueCoding": coding},
                                   {"name": "source", "valueUri": f"urn:medcodes:gem:{gem.direction}"}]
    if combo is not None:
        parts[0]["valueCode"] = "relatedto"  # one of several codes that together express the source
        parts.append({"name": "product", "part": [
            {"name": "element", "valueUri": "urn:medcodes:gem:combination"},
            {"name": "concept", "valueCoding": {"system": "urn:medcodes:gem:scenario-choice-list",
                                                "code": f"{combo[0]}.{combo[1]}",
                                                "display": f"combination: scenario {combo[0]}, "
                                                           f"choice list {combo[1]}"}}]})
    return {"name": "match", "part": parts}


def _default_target(source: str) -> str:
    if source == "icd9cm":
        return "icd10cm"
    if source in ("icd10cm", "icd10pcs"):
        return "icd9cm"
    raise FhirError(400, "invalid", f"$translate: no GEM starts from {SYSTEM_URIS[source]}")


# ---------------------------------------------------------------- CodeSystem resources
def code_system_id(info: ReleaseInfo) -> str:
    return f"{info.system}-{info.release}"


def code_system(book: Any, info: ReleaseInfo) -> dict[str, Any]:
    """A CodeSystem resource describing one installed release (content not-present: ask $lookup)."""
    db = _db(book, info)
    count = db.conn.execute("SELECT COUNT(*) FROM concept").fetchone()[0]
    name = SYSTEM_NAMES.get(info.system, info.system)
    return {
        "resourceType": "CodeSystem",
        "id": code_system_id(info),
        "url": SYSTEM_URIS[info.system],
        "version": info.release,
        "name": name.replace("-", "").replace(" ", "").replace("(", "").replace(")", ""),
        "title": f"{name}: {info.label}",
        "status": "active",
        "experimental": False,
        "publisher": MAINTAINERS.get(info.system, ""),
        "description": f"{info.label}, effective {info.effective_from.isoformat()}"
                       + (f" to {info.effective_to.isoformat()}" if info.effective_to else "")
                       + ". Built by medcodes from the official files: "
                       + ", ".join(s["name"] for s in info.sources) + ".",
        "caseSensitive": False,
        "valueSet": SYSTEM_URIS[info.system] + VS_SUFFIX,
        "hierarchyMeaning": "is-a",
        "content": "not-present",
        "count": count,
        "property": [
            {"code": "parent", "type": "code", "description": "The code's parent in the hierarchy"},
            {"code": "child", "type": "code", "description": "A code directly below this one"},
            {"code": "billable", "type": "boolean", "description": "Valid for billing on a claim"},
            {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable",
             "type": "boolean", "description": "A header: use a more specific code"},
            {"code": "inactive", "uri": "http://hl7.org/fhir/concept-properties#inactive",
             "type": "boolean", "description": "Discontinued in this release"},
            {"code": "kind", "type": "code", "description": "medcodes row kind (code, header, modifier...)"},
            {"code": "note", "type": "string", "description": "Tabular notes (includes, excludes...)"},
        ],
    }


def code_system_infos(book: Any) -> list[ReleaseInfo]:
    return [i for i in book.releases() if i.system in SYSTEM_URIS]


def code_system_bundle(book: Any, url: str | None, version: str | None, rid: str | None,
                       base: str) -> dict[str, Any]:
    """GET /fhir/CodeSystem?url=&version=&_id=: a searchset Bundle of matching releases."""
    infos = code_system_infos(book)
    if url:
        try:
            system = system_for_uri(url)
        except FhirError:
            infos = []
        else:
            infos = [i for i in infos if i.system == system]
    if version:
        infos = [i for i in infos if i.release == version]
    if rid:
        infos = [i for i in infos if code_system_id(i) == rid]
    entries = [{"fullUrl": f"{base}/CodeSystem/{code_system_id(i)}", "resource": code_system(book, i),
                "search": {"mode": "match"}} for i in infos]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


# ---------------------------------------------------------------- capabilities
def capability_statement(base: str, translate_ok: bool) -> dict[str, Any]:
    """CapabilityStatement of this terminology server."""
    cs_ops = [{"name": n, "definition": OPERATION_DEFS[n]} for n in ("lookup", "validate-code", "subsumes")]
    vs_ops = [{"name": "expand", "definition": OPERATION_DEFS["expand"]},
              {"name": "validate-code", "definition": OPERATION_DEFS["vs-validate-code"]}]
    resources = [
        {"type": "CodeSystem", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "searchParam": [{"name": "url", "type": "uri"}, {"name": "version", "type": "token"}],
         "operation": cs_ops},
        {"type": "ValueSet", "operation": vs_ops},
    ]
    if translate_ok:
        resources.append({"type": "ConceptMap",
                          "operation": [{"name": "translate", "definition": OPERATION_DEFS["translate"]}]})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _dt.date.today().isoformat(),
        "publisher": "medcodes",
        "kind": "instance",
        "software": {"name": "medcodes", "version": __version__},
        "implementation": {"description": "medcodes terminology server (offline US billing code sets)",
                           "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "instantiates": ["http://hl7.org/fhir/CapabilityStatement/terminology-server"],
        "rest": [{"mode": "server", "resource": resources}],
    }


def terminology_capabilities(book: Any) -> dict[str, Any]:
    """TerminologyCapabilities (GET /fhir/metadata?mode=terminology): installed systems and versions."""
    by_system: dict[str, list[ReleaseInfo]] = {}
    for info in code_system_infos(book):
        by_system.setdefault(info.system, []).append(info)
    code_systems = []
    for system, infos in by_system.items():
        try:
            default = book.release_for(system).release
        except MedcodesError:
            default = None
        code_systems.append({"uri": SYSTEM_URIS[system], "version": [
            {"code": i.release, "isDefault": i.release == default,
             "property": ["parent", "child", "billable", "notSelectable", "inactive", "kind", "note"]}
            for i in infos], "subsumption": True})
    return {
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": _dt.date.today().isoformat(),
        "kind": "instance",
        "software": {"name": "medcodes", "version": __version__},
        "codeSystem": code_systems,
        "expansion": {"hierarchical": False, "paging": True, "incomplete": False,
                      "textFilter": "Code prefix, or every word of the filter in the title"},
        "codeSearch": "all",
        "validateCode": {"translations": False},
        "translation": {"needsMap": False},
    }
