"""What a parsed value may be, and the one error for input that is not what it should be.

The ranges a reading's fields must keep were found by fuzzing (tests/fuzz). The importer stores
the start as a timestamp (so within 1970..9999), the duration in an IntegerField, value and
cost in BigIntegerFields and the codes in SmallIntegerFields: a value outside is refused with
its line instead of overflowing mid-insert. Bounding *before* int() matters too: a start of
"1e999999999" made int(Decimal) build a billion-digit number (minutes of CPU, GBs of RAM).
"""

from __future__ import annotations

from gascap.pge.safexml import XmlRejected

# The one error type for malformed or hostile ESPI input (line/column where known). The XML
# parser comes from `gascap.pge.safexml` (R3: DOCTYPE refused, no entities, no network).
EspiRejected = XmlRejected

START_MIN = 0
START_MAX = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold
DURATION_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CODE_MIN, CODE_MAX = -(2**15), 2**15 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
