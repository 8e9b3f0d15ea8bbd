"""Number formats of the report's tables ("–" for a missing value)."""
import math


def f_num(v, digits=0, unit=""):
    """1,234 / 1,234.5 (thousands separated)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.{digits}f}{unit}"


def f_ms(v):
    """Milliseconds with three significant digits or so: 0.36, 14.2, 146."""
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def f_pct(v, digits=1):
    """A ratio as a percentage: 0.183 -> 18.3 %."""
    return "–" if v is None else f"{100 * v:.{digits}f} %"


def f_sock(socket_errors):
    """connect/read/write/timeout."""
    se = socket_errors or {}
    return "/".join(str(se.get(k, 0)) for k in ("connect", "read", "write", "timeout"))
