"""The catalogue of official releases: what each agency published, when it is in effect, where to get it.

One :class:`CatalogueRelease` per (system, release id), named the way the
system modules name their releases (ICD-10-CM ``2026`` for the fiscal year
starting 2025-10-01 and ``2026-04`` for its April 1 update; ICD-10-PCS
``2026``; HCPCS ``2020-01``, ``2020-04`` ...). Each lists the official files
(:class:`OfficialFile`: the cms.gov / cdc.gov URL, the members expected
inside a zip, and size / sha256 where they are known).

These are facts about the agencies' publications, not agency data. Their
provenance is ``shared/data/SOURCES.md``:

* ``url_status="documented"``: the URL is printed in SOURCES.md.
* ``url_status="pattern"``: the URL follows a pattern SOURCES.md documents
  for another year or quarter of the same publication (not checked here).
* ``url_status="inferred"``: SOURCES.md names only the agency page and the
  file name; the URL is the agency's usual folder for it (not checked here).

Sizes and sha256 are never verified against the agency servers from here:
``checksum_from`` says where a value comes from. A known size or sha256 is
checked after download (:mod:`medcodes.download`); an agency re-issue of a
file under the same URL shows up as a one-line checksum error.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import MedcodesError
from .calendar import fiscal_year, hcpcs_quarter

CMS_ZIP = "https://www.cms.gov/files/zip/"
CDC_ICD10CM = "https://ftp.cdc.gov/pub/Health_Statistics/NCHS/Publications/ICD10CM/"
CMS_HCPCS_LEGACY = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets/Downloads/"
HCPCS_PAGE = "https://www.cms.gov/medicare/coding-billing/healthcare-common-procedure-system/quarterly-update"
ICD10_PAGE = "https://www.cms.gov/medicare/coding-billing/icd-10-codes"

#: Where a known size/sha256 came from (none of them verified against the agency server).
FROM_SHARED = "shared/data/SOURCES.md: copy from a public repository (unverified against the agency server)"
FROM_MANIFEST = "shared/data/SOURCES.md: third-party public manifest (unverified)"

#: System id the GEM release is filed under (the ``crosswalk`` system module).
GEM_SYSTEM = "crosswalk"


class CatalogueError(MedcodesError):
    """A system or release that the catalogue does not list."""


@dataclass(frozen=True)
class OfficialFile:
    """One file as an agency publishes it."""

    url: str
    members: tuple[str, ...] = ()      # files expected inside (for a zip); empty for a plain file
    size: int | None = None
    sha256: str | None = None
    checksum_from: str = ""
    url_status: str = "documented"     # documented | pattern | inferred (see module docstring)

    @property
    def name(self) -> str:
        """File name as the agency ships it (the last part of the URL path)."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]

    @property
    def path(self) -> str:
        """The URL path (what a mirror keeps)."""
        return urlsplit(self.url).path

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url, "name": self.name, "members": list(self.members),
            "size": self.size, "sha256": self.sha256, "checksum_from": self.checksum_from or None,
            "url_status": self.url_status,
        }


@dataclass(frozen=True)
class CatalogueRelease:
    """One official release of one system."""

    system: str
    release: str
    label: str
    effective_from: _dt.date
    effective_to: _dt.date | None
    files: tuple[OfficialFile, ...]
    page: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def covers(self, day: _dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system, "release": self.release, "label": self.label,
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "page": self.page, "files": [f.as_dict() for f in self.files], "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- ICD-10-CM
_CM_ORDER_MEMBERS = ("icd10cm_order_{fy}.txt", "icd10cm_codes_{fy}.txt",
                     "icd10cm_order_addenda_{fy}.txt", "icd10cm_codes_addenda_{fy}.txt")


def _cm_order(fy: int, *, size: int | None = None, sha256: str | None = None,
              checksum_from: str = "", url_status: str = "documented") -> OfficialFile:
    return OfficialFile(
        CMS_ZIP + f"{fy}-code-descriptions-tabular-order.zip",
        tuple(m.format(fy=fy) for m in _CM_ORDER_MEMBERS),
        size, sha256, checksum_from, url_status)


def _icd10cm() -> list[CatalogueRelease]:
    fy25_from, fy25_to = fiscal_year(2025)
    fy26_from, fy26_to = fiscal_year(2026)
    fy27_from, fy27_to = fiscal_year(2027)
    april_2026 = _dt.date(2026, 4, 1)
    return [
        CatalogueRelease(
            "icd10cm", "2025", "ICD-10-CM FY2025", fy25_from, fy25_to,
            (_cm_order(2025, size=2_317_827,
                       sha256="4f6c65f0034736d2b02fa9eb1128aab564fa673dd4d99363f8b2167af3994816",
                       checksum_from=FROM_SHARED),),
            ICD10_PAGE),
        CatalogueRelease(
            "icd10cm", "2026", "ICD-10-CM FY2026 (October 1, 2025)", fy26_from,
            april_2026 - _dt.timedelta(days=1),
            (_cm_order(2026, size=2_204_985,
                       sha256="55a9124a27ca78a4a5c41e1101eda064ec2e08d105ff9e78d1fbd1a83298ef11",
                       checksum_from=FROM_SHARED),),
            ICD10_PAGE,
            ("Also published: " + CDC_ICD10CM + "2026/icd10cm-addenda-2026.zip (PDF addenda), "
             + CDC_ICD10CM + "2026/POAexemptCodesFY26.zip, "
             + CDC_ICD10CM + "2026/ICD-10-CM-CONVERSION-TABLE-FY2026.xlsx",)),
        CatalogueRelease(
            "icd10cm", "2026-04", "ICD-10-CM FY2026 April 1, 2026 update", april_2026, fy26_to,
            (OfficialFile(CDC_ICD10CM + "2026-update/icd10cm-April-1-2026-XML.zip",
                          ("icd10c-tabular-April-1-2026.xml", "icd10cm-drug-April-1-2026-XML.xml",
                           "icd10cm-eindex-April-1-2026-XML.xml", "icd10cm-neoplasm-April-1-2026-XML.xml",
                           "icd10cm-index-April-1-2026-XML.xml")),),
            CDC_ICD10CM + "2026-update/",
            ("CMS publishes the same update as " + CMS_ZIP + "april-1-2026-code-descriptions-tabular-order.zip"
             " and " + CMS_ZIP + "april-1-2026-code-tables-tabular-index.zip",)),
        CatalogueRelease(
            "icd10cm", "2027", "ICD-10-CM FY2027", fy27_from, fy27_to,
            (_cm_order(2027, size=2_208_022,
                       sha256="91c6c9d1117764ce72375a0f3a5493b1725dafbc1ab283b55799076c9e194965",
                       checksum_from=FROM_MANIFEST),
             OfficialFile(CMS_ZIP + "2027-code-tables-tabular-index.zip",
                          ("icd10cm_tabular_2027.xml", "icd10cm_index_2027.xml"),
                          22_059_093, "37baa476323714be16f95c9b2c96812bf6f3623d9f15188866e584dc529b0298",
                          FROM_MANIFEST)),
            ICD10_PAGE,
            ("Also published: " + CMS_ZIP + "2027-icd-10-addendum.zip, " + CMS_ZIP + "2027-conversion-table.zip",)),
    ]


# --------------------------------------------------------------------------- ICD-10-PCS
def _pcs_order(fy: int, *, size: int | None = None, sha256: str | None = None,
               checksum_from: str = "", url_status: str = "documented") -> OfficialFile:
    return OfficialFile(
        CMS_ZIP + f"{fy}-icd-10-pcs-order-file-long-and-abbreviated-titles.zip",
        (f"icd10pcs_order_{fy}.txt", f"order_addenda_{fy}.txt"),
        size, sha256, checksum_from, url_status)


def _pcs_tables(fy: int, url_status: str = "documented") -> OfficialFile:
    return OfficialFile(
        CMS_ZIP + f"{fy}-icd-10-pcs-code-tables-and-index.zip",
        (f"icd10pcs_tables_{fy}.xml", f"icd10pcs_index_{fy}.xml", f"icd10pcs_definitions_{fy}.xml"),
        url_status=url_status)


def _icd10pcs() -> list[CatalogueRelease]:
    out = []
    known = {
        2025: (1_318_110, "3534c5f6ec23d1179d960683feb24137a4c163c7b91aa45a1ad889c042f7027a"),
        2026: (1_319_592, "64e37e6060bfd9eca74d9973be28fdf570b40f87a3a855bd078eb343dd0e594e"),
    }
    for fy in (2025, 2026, 2027):
        start, end = fiscal_year(fy)
        size, sha = known.get(fy, (None, None))
        status = "documented" if fy in known else "pattern"
        order = _pcs_order(fy, size=size, sha256=sha, checksum_from=FROM_SHARED if sha else "",
                           url_status=status)
        notes: tuple[str, ...] = ()
        if fy == 2026:
            notes = ("CMS re-issued the tables as 2026-icd-10-pcs-code-tables-and-index-updated-01012026.zip",)
        out.append(CatalogueRelease("icd10pcs", str(fy), f"ICD-10-PCS FY{fy}", start, end,
                                    (order, _pcs_tables(fy, status)), ICD10_PAGE, notes))
    return out


# --------------------------------------------------------------------------- HCPCS
_MONTHS = {1: "january", 4: "april", 7: "july", 10: "october"}
_MON3 = {1: "JAN", 4: "APR", 7: "JUL", 10: "OCT"}


def _hcpcs_annual_legacy(year: int, size: int, sha256: str, members: tuple[str, ...]) -> OfficialFile:
    return OfficialFile(CMS_HCPCS_LEGACY + f"{year}-Alpha-Numeric-HCPCS-File.zip", members,
                        size, sha256, FROM_SHARED, "inferred")


def _hcpcs_quarterly(year: int, month: int) -> OfficialFile:
    status = "documented" if year == 2026 else "pattern"
    # Member names change from quarter to quarter (``_v2``, dated suffixes): only the documented ones.
    members: tuple[str, ...] = ()
    if (year, month) == (2026, 1):   # the 01/12/2026 re-issue, as in shared/data
        return OfficialFile(CMS_ZIP + "january-2026-alpha-numeric-hcpcs-file.zip",
                            ("HCPC2026_JAN_ANWEB_01122026.txt", "HCPC2026_JAN_ANWEB_01122026.xlsx",
                             "HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx",
                             "HCPC2026_JAN_ANWEB_Transaction Report_12292025.xlsx", "HCPC2026_recordlayout.txt",
                             "NOC codes_JAN2026.xlsx", "proc_notes_JAN2026.txt"),
                            2_519_574, "8f4a26de1eca89205be02fbe48cc899c6c5930cf5d4f6b8c5a227f64450157b0",
                            FROM_SHARED, "documented")
    if (year, month) == (2026, 10):
        members = ("HCPC2026_OCT_ANWEB_v2.txt", "HCPC2026_OCT_ANWEB_v2.xlsx", "HCPC2026_recordlayout.txt",
                   "proc_notes_OCT2026.txt")
    return OfficialFile(CMS_ZIP + f"{_MONTHS[month]}-{year}-alpha-numeric-hcpcs-file.zip",
                        members, url_status=status)


def _hcpcs() -> list[CatalogueRelease]:
    out: list[CatalogueRelease] = []
    for year in range(2019, 2027):
        for month in (1, 4, 7, 10):
            start, end = hcpcs_quarter(year, month)
            release = f"{year}-{month:02d}"
            label = f"HCPCS Level II {_MON3[month]} {year}"
            notes: tuple[str, ...] = ()
            if (year, month) == (2019, 1):
                files: tuple[OfficialFile, ...] = (
                    _hcpcs_annual_legacy(2019, 1_943_834,
                                         "61c0ba424005b1ffcabfcd9eba6833e8046912343e1da7c99cbfd055dde8dcb1",
                                         ("HCPC2019_CONTR_ANWEB.txt", "HCPC2019_README.txt")),
                    OfficialFile(CMS_HCPCS_LEGACY + "2019-HCPCS-Record-Layout.zip",
                                 ("HCPCS2019_recordlayout.txt",), 9_988,
                                 "b511eee350cdffbfebc1c4d40a2d131bcd476870e23a7fd5ed0a1a05e0a36017",
                                 FROM_SHARED, "inferred"))
            elif (year, month) == (2020, 1):
                files = (_hcpcs_annual_legacy(2020, 1_884_267,
                                              "c7223c198ac019be842a3370defb6365eeb573da2a97e251650c25056c7b8ab3",
                                              ("HCPC2020_ANWEB_w_disclaimer.txt", "HCPC2020_README.txt")),)
            else:
                files = (_hcpcs_quarterly(year, month),)
                if (year, month) == (2026, 1):
                    notes = ("CMS re-issued this file on 01/12/2026 (HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx "
                             "lists the corrections); the size and sha256 are those of the re-issue",)
                if year < 2026:
                    notes = ("URL follows the 2026 quarterly-file pattern; not documented for this quarter",)
            out.append(CatalogueRelease("hcpcs", release, label, start, end, files, HCPCS_PAGE, notes))
    return out


# --------------------------------------------------------------------------- NCCI
NCCI_PAGE = "https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits"
_MUE_ZIPS = (  # (zip name part, member name part) per setting
    ("practitioner-services", "PractitionerServices"),
    ("facility-outpatient-hospital-services", "OutpatientHospitalServices"),
    ("dme-supplier-services", "DMESupplierServices"),
)


def _ncci() -> list[CatalogueRelease]:
    """NCCI quarters: the three MUE tables and the add-on code edits (PTP files: see the notes)."""
    out: list[CatalogueRelease] = []
    for year in (2026,):
        for q in (1, 2, 3, 4):
            month = 3 * q - 2
            start = _dt.date(year, month, 1)
            end = (_dt.date(year + (q == 4), month % 12 + 3 if q < 4 else 1, 1)) - _dt.timedelta(days=1)
            eff = f"{month:02d}-01-{year}"
            files = []
            for zip_part, member in _MUE_ZIPS:
                # SOURCES.md documents the Q2 zips of all three settings and the Q3 practitioner zip
                documented = q == 2 or (q == 3 and member == "PractitionerServices")
                files.append(OfficialFile(CMS_ZIP + f"medicare-ncci-{year}-q{q}-{zip_part}-mue-table.zip",
                                          (f"MCR_MUE_{member}_Eff_{eff}.csv",),
                                          url_status="documented" if documented else "pattern"))
            files.append(OfficialFile(CMS_ZIP + f"medicare-ncci-{year}-q{q}-add-code-edits.zip",
                                      (f"AOC_V{year}Q{q}-MCR.xlsx",), url_status="inferred"))
            out.append(CatalogueRelease(
                "ncci", f"{year}-q{q}", f"NCCI {year} Q{q} (Medicare)", start, end, tuple(files),
                NCCI_PAGE + "/medicare-ncci-medically-unlikely-edits",
                ("MUE tables (practitioner, outpatient hospital, DME supplier) and add-on code edits; the add-on "
                 "code zip name is inferred (SOURCES.md names the page and the workbook only), and CMS posts an "
                 "AOC file only in quarters where the edits change",
                 "PTP edit files (ccipra/ccioph, hundreds of MB a quarter) are not downloaded: put them in a "
                 "folder with these and run medcodes pull --from DIR")))
    return out


# --------------------------------------------------------------------------- GEMs and ICD-9-CM
def _legacy() -> list[CatalogueRelease]:
    fy18_from, fy18_to = fiscal_year(2018)
    gems = CatalogueRelease(
        GEM_SYSTEM, "gem-2018", "General Equivalence Mappings 2018 (final)", fy18_from, None,
        (OfficialFile(CDC_ICD10CM + "2018/Dxgem_2018.zip", ("2018_I9gem.txt", "2018_I10gem.txt"),
                      1_114_471, "2791c0d0560690423a7c3134107f315adb48459df5807fefddeb36ac55b2bc6b", FROM_SHARED),
         OfficialFile("https://www.cms.gov/medicare/coding/icd10/downloads/"
                      "2018-icd-10-pcs-general-equivalence-mappings.zip",
                      ("gem_i9pcs.txt", "gem_pcsi9.txt"))),
        "https://www.cms.gov/Medicare/Coding/ICD10/2018-ICD-10-CM-and-GEMs",
        ("The GEMs were last published for FY2018; no later edition exists",))
    icd9 = CatalogueRelease(
        "icd9cm", "v32", "ICD-9-CM version 32 (final)", _dt.date(2014, 10, 1), _dt.date(2015, 9, 30),
        (OfficialFile("https://www.cms.gov/medicare/coding/icd9providerdiagnosticcodes/downloads/"
                      "icd-9-cm-v32-master-descriptions.zip",
                      ("CMS32_DESC_LONG_DX.txt", "CMS32_DESC_SHORT_DX.txt",
                       "CMS32_DESC_LONG_SG.txt", "CMS32_DESC_SHORT_SG.txt"),
                      url_status="inferred"),),
        "https://www.cms.gov/medicare/coding-billing/icd-10-codes/"
        "icd-9-cm-diagnosis-procedure-codes-abbreviated-and-full-code-titles",
        ("ICD-9-CM was replaced by ICD-10-CM/PCS on 2015-10-01",))
    fy26_from, fy26_to = fiscal_year(2026)
    conversion = CatalogueRelease(
        GEM_SYSTEM, "conversion-2026", "ICD-10-CM conversion table FY2026", fy26_from, fy26_to,
        (OfficialFile(CDC_ICD10CM + "2026/ICD-10-CM-CONVERSION-TABLE-FY2026.xlsx", (), 164_524,
                      "9040e201d336180bc2f9b5824661a02899bb969d107f352aa81b2e44730d2479", FROM_SHARED),),
        CDC_ICD10CM + "2026/")
    return [gems, conversion, icd9]


# --------------------------------------------------------------------------- MS-DRG tables, guidelines
IPPS_PAGE = "https://www.cms.gov/medicare/payment/prospective-payment-systems/acute-inpatient-pps"


def _inpatient() -> list[CatalogueRelease]:
    fy26_from, fy26_to = fiscal_year(2026)
    msdrg = CatalogueRelease(
        "msdrg", "2026", "MS-DRG v43 (FY2026 IPPS final rule tables 5, 6I, 6J, 6K; POA-exempt codes)",
        fy26_from, fy26_to,
        (OfficialFile(CMS_ZIP + "fy-2026-ipps-final-rule-table-5.zip", (), url_status="inferred"),
         OfficialFile(CMS_ZIP + "fy-2026-ipps-final-rule-tables-6a-6k.zip", (), url_status="inferred"),
         OfficialFile(CDC_ICD10CM + "2026/POAexemptCodesFY26.zip",
                      ("POAexemptCodesFY26.txt", "POAexemptAddCodesFY26.txt", "POAexemptDeleteCodesFY26.txt",
                       "POAexemptReviseCodesFY26.txt", "ReadMePOAexemptFY26.txt"), 1_228_270,
                      "eedc59099e27b069f97c90880859431bf4a7416fa8e16672b04040a98cb28e9c", FROM_SHARED)),
        IPPS_PAGE + "/fy-2026-ipps-final-rule-home-page",
        ("Tables 5 and 6A-6K are linked from the FY2026 IPPS final rule home page (Tables section); the zip "
         "names follow CMS's usual naming and are not checked here. The files are recognised by their "
         "content (title rows), whatever their names.",))
    guidelines = CatalogueRelease(
        "icd10cm_guidelines", "2026", "ICD-10-CM Official Guidelines for Coding and Reporting FY2026",
        fy26_from, fy26_to,
        (OfficialFile(CDC_ICD10CM + "2026/ICD-10-CM-October-2025-Guidelines.pdf", (), 838_632,
                      "992310dd8323de12026e3db40b7e60f94ea997e4808a56e0ea584ee3ea5cc7ea", FROM_SHARED),),
        ICD10_PAGE)
    return [msdrg, guidelines]


# --------------------------------------------------------------------------- lookups
def _build() -> dict[tuple[str, str], CatalogueRelease]:
    entries = _icd10cm() + _icd10pcs() + _hcpcs() + _legacy() + _ncci() + _inpatient()
    return {(e.system, e.release): e for e in entries}


CATALOGUE: dict[tuple[str, str], CatalogueRelease] = _build()


def systems() -> list[str]:
    """Systems the catalogue lists, in a stable order."""
    return sorted({s for s, _ in CATALOGUE})


def releases(system: str | None = None) -> list[CatalogueRelease]:
    """Catalogued releases (of one system), oldest first."""
    found = [e for e in CATALOGUE.values() if system is None or e.system == system]
    return sorted(found, key=lambda e: (e.system, e.effective_from, e.release))


def get(system: str, release: str) -> CatalogueRelease:
    """The catalogue entry, or a one-line :class:`CatalogueError` naming what exists."""
    entry = CATALOGUE.get((system, release))
    if entry is not None:
        return entry
    known = [e.release for e in releases(system)]
    if not known:
        raise CatalogueError(f"{system}: no official releases catalogued (systems: {', '.join(systems())})")
    raise CatalogueError(f"{system} {release}: not in the catalogue (known: {', '.join(known)})")


def in_effect(system: str, day: _dt.date) -> CatalogueRelease | None:
    """The catalogued release of ``system`` in effect on ``day`` (None when none covers it)."""
    hits = [e for e in releases(system) if e.covers(day)]
    return hits[-1] if hits else None


def latest(system: str, today: _dt.date | None = None) -> CatalogueRelease:
    """The release in effect today, else the newest catalogued one."""
    day = today or _dt.date.today()
    entry = in_effect(system, day)
    if entry is not None:
        return entry
    entries = releases(system)
    if not entries:
        raise CatalogueError(f"{system}: no official releases catalogued (systems: {', '.join(systems())})")
    return entries[-1]
