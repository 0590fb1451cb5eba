"""Measurements as rows, and the targets computed from them.

Every number of the report is one row ``(section, name, metric, value, unit, note)`` (the CSV's
lines); a target names the rows it divides, so its ratio always comes from the numbers printed
next to it, never from a separate copy.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

KEYS = ['section', 'name', 'metric', 'value', 'unit', 'target', 'result', 'note']
TARGET_SECTION = 'targets'


def row(section, name, metric, value, unit='', note=''):
    """One measurement (``value`` None: not measured, the note says why)."""
    return dict(section=section, name=name, metric=metric, value=value, unit=unit, target='', result='', note=note)


def timing_rows(section, name, seconds, macs=None, pixels=None, note=''):
    """``ms`` of a forward, and its GMAC/s (with ``macs``) and megapixels per second (with ``pixels``)."""
    rows = [row(section, name, 'ms', seconds * 1000., 'ms', note)]
    if macs is not None:
        rows.append(row(section, name, 'GMAC/s', macs / 1e9 / seconds, 'GMAC/s', note))
    if pixels is not None:
        rows.append(row(section, name, 'MP/s', pixels / 1e6 / seconds, 'MP/s', note))
    return rows


def error_row(section, name, err):
    """What a failed measurement leaves in the report: its first line, not a traceback."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return row(section, name, 'error', None, note=f'error: {text[:200]}')


def find(rows, key):
    """The row ``key = (section, name, metric)``, or None."""
    return next((r for r in rows if (r['section'], r['name'], r['metric']) == tuple(key)), None)


def value(rows, key):
    """The numeric value of row ``key``, or None when it is absent or was not measured."""
    found = find(rows, key)
    if found is None or not isinstance(found['value'], (int, float)) or isinstance(found['value'], bool):
        return None
    return float(found['value'])


@dataclass(frozen=True)
class Target:
    """``numerator / denominator`` (or the numerator alone) must be ``op`` ``limit``."""
    name: str
    numerator: Tuple[str, str, str]
    denominator: Optional[Tuple[str, str, str]]
    op: str  # '>=' or '<='
    limit: float
    unit: str = 'x'

    def __post_init__(self):
        if self.op not in ('>=', '<='):
            raise ValueError(f'target {self.name}: op must be >= or <=, got {self.op!r}')

    @property
    def required(self):
        return f'{self.op} {self.limit:g}{"" if self.unit == "x" else " " + self.unit}'


def passes(measured, op, limit):
    """Whether ``measured op limit`` holds."""
    return measured >= limit if op == '>=' else measured <= limit


def check(target, rows):
    """The target's row: its measured value (the ratio of the named rows), PASS / FAIL, or ``n/a``
    with the reason (a row missing, or not measured: its note)."""
    numerator = value(rows, target.numerator)
    denominator = value(rows, target.denominator) if target.denominator else 1.
    out = row(TARGET_SECTION, target.name, 'measured', None, target.unit)
    out['target'] = target.required
    if numerator is None or denominator is None or denominator == 0:
        missing = [k for k in (target.numerator, target.denominator) if k and value(rows, k) is None]
        notes = [find(rows, k)['note'] for k in missing if find(rows, k) is not None and find(rows, k)['note']]
        reasons = notes or [f'not measured: {" / ".join(k)}' for k in missing] or ['zero denominator']
        out.update(result='n/a', note='; '.join(dict.fromkeys(reasons)))
        return out
    measured = numerator / denominator
    what = ' / '.join(f'{k[1]} {k[2]}' for k in (target.numerator, target.denominator) if k)
    out.update(value=measured, result='PASS' if passes(measured, target.op, target.limit) else 'FAIL', note=what)
    return out


def check_all(targets, rows):
    """One row per target, in order."""
    return [check(t, rows) for t in targets]
