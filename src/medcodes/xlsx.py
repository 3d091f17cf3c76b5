"""Reading the agencies' Excel workbooks (HCPCS quarterly updates, the ICD-10-CM conversion table).

python-calamine (a binding to the Rust calamine reader) reads a 7,000-row HCPCS
workbook in about a tenth of the time openpyxl takes, which keeps `medcodes pull`
fast. Empty cells come back as None and whole numbers as int, as openpyxl gives them.
"""

from __future__ import annotations

from typing import Any

from .errors import DataError
from .sources import Source


def sheet_names(src: Source) -> list[str]:
    """The workbook's sheet names, in order."""
    import io

    from python_calamine import CalamineWorkbook

    try:
        return list(CalamineWorkbook.from_filelike(io.BytesIO(src.read_bytes())).sheet_names)
    except DataError:
        raise
    except Exception as exc:  # calamine raises its own error types on a damaged workbook
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{src.display}: not a readable Excel workbook ({first})") from exc


def sheet_rows(src: Source, sheet: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of ``sheet`` (default: the first) as tuples of cell values."""
    import io


    from python_calamine import CalamineWorkbook

    data = src.read_bytes()
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = wb.sheet_names
        if sheet is not None and sheet not in names:
            raise DataError(f"{src.display}: no sheet {sheet!r} (sheets: {', '.join(names)})")
        rows = wb.get_sheet_by_name(sheet or names[0]).to_python(skip_empty_area=False)
    except DataError:
        raise
    except Exception as exc:  # calamine raises its own error types on a damaged workbook
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{src.display}: not a readable Excel workbook ({first})") from exc
    return [tuple(_cell(v) for v in row) for row in rows]


def _cell(v: Any) -> Any:
    """None for an empty cell, int for a whole number (Excel stores every number as a float)."""
    if v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
