"""The agencies' release calendars: fiscal years (ICD-10-CM/PCS) and quarters (HCPCS)."""

from __future__ import annotations

import datetime as _dt


def fiscal_year(fy: int) -> tuple[_dt.date, _dt.date]:
    """US federal fiscal year FY (ICD-10-CM/PCS): Oct 1 of FY-1 to Sep 30 of FY."""
    return _dt.date(fy - 1, 10, 1), _dt.date(fy, 9, 30)


def hcpcs_quarter(year: int, month: int) -> tuple[_dt.date, _dt.date]:
    """HCPCS quarterly file for (year, month in 1/4/7/10): that quarter's first and last day."""
    start = _dt.date(year, month, 1)
    end_month = month + 3
    end = _dt.date(year + (end_month > 12), (end_month - 1) % 12 + 1, 1) - _dt.timedelta(days=1)
    return start, end
