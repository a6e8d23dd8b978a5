"""Forecast rows as CSV text, formatted by numpy a block at a time.

Formatting each value with Python (a `%`-format per row) cost more than the model: the point
forecast, its bounds and two timestamps per output row. Here each column is turned into bytes by
array arithmetic, and the text is byte for byte what `'%.6g' % value`, `str(integer)` and
`strftime('%Y-%m-%d %H:%M:%S')` write. Every field is a fixed-width byte array whose unused
bytes are 0xFF, a byte UTF-8 never uses, deleted from the finished block in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

PAD = 0xFF
_PAD_BYTE = bytes([PAD])
_U8 = np.uint64(8)

# Decimal exponents X handled by arithmetic; others (0, subnormals, |X| >= 100, inf, nan) and
# the rare value within rounding error of a tie fall back to Python's own formatting.
_LIMIT = 99
_OFFSET = _LIMIT + 2  # table index of X = 0; X is clipped to [-101, 101]
_XS = range(-_OFFSET, _OFFSET + 1)
# Distance from a half that float rounding of the scaled value cannot cross (its error is below
# 1e-9 for the 6-digit integers scaled here).
_SAFE = 0.5 - 1e-6


def _power(k: int) -> float:
    """10**k as the nearest double (integer division rounds correctly)."""
    return float(10**k) if k >= 0 else 1 / 10**-k


def _ascii(text: str) -> int:
    """Bytes of `text` as a little-endian integer: the first character in the lowest byte."""
    return int.from_bytes(text.encode(), "little")


def _low(n: int) -> int:
    """A mask of the lowest `n` bytes of a 64-bit word."""
    return (1 << (8 * max(0, min(n, 8)))) - 1


_ALL = (1 << 64) - 1
# X of each binary exponent (the float's top 12 bits), one too low at most: `_NEXT` corrects it.
_EXPONENT = np.clip(np.floor((np.arange(2048) - 1023) * math.log10(2)), -_OFFSET, _OFFSET)
_EXPONENT = (_EXPONENT + _OFFSET).astype(np.intp)
_EXPONENT[[0, 2047]] = (0, 2 * _OFFSET)  # zero and subnormals; inf and nan
_NEXT = np.array([_power(x + 1) if x < _LIMIT else math.inf for x in _XS])
_NEXT[[0, -1]] = math.nan
# 10**(5 - X): the value scaled to a 6-digit integer; nan where X is not handled.
_SCALE = np.array([_power(5 - x) if abs(x) <= _LIMIT else math.nan for x in _XS])
# The six digits one byte up (byte 0 holds the sign): three from each half of the integer.
_DIGITS_HI = np.array([_ascii(f"{v:03d}") << 8 for v in range(1000)], np.uint64)
_DIGITS_LO = np.array([_ascii(f"{v:03d}") << 32 for v in range(1000)], np.uint64)
_ZEROS = np.array([3 - len(f"{v:03d}".rstrip("0")) for v in range(1000)], np.intp)
_LOW = np.array([_low(n) for n in range(9)], np.uint64)
# Fixed notation for -4 <= X < 6, else exponent notation. X >= 0 keeps X + 1 digits before the
# point (`before`); X < 0 and exponent notation are longer than 8 bytes, laid out apart.
_LONG = np.array([not 0 <= x < 6 for x in _XS])
_BEFORE = [x + 1 if 0 <= x < 6 else 1 for x in _XS]
_BASE = np.array([1000 * (b - 1) for b in _BEFORE], np.intp)


def _half(before: int, value: int, first: int) -> int:
    """Bytes of digits `first`..`first + 2` (`value`) of a 6-digit mantissa with `before`
    digits before its point, trailing zeros of the fraction cut (PAD), as a word to OR in.

    The half holding the last integer digit or the first fraction digit writes the point,
    cut when no fraction digit is left; with a zero low half (000) the cut is left to
    `_WHOLE` (it depends on both halves).
    """
    text = f"{value:03d}"
    word = 0
    keep = len(text.rstrip("0")) if first == 3 and value else 3  # digits of this half kept
    for j in range(3):
        digit = first + j
        position = 1 + digit + (digit >= before)
        fraction = digit >= before
        byte = PAD if fraction and j >= keep else ord(text[j])
        word |= byte << (8 * position)
    point_here = (before >= 3) == (first == 3) if before < 6 else first == 3
    if point_here:
        fraction_left = first == 3 and value and any(3 + j >= before and j < keep for j in range(3))
        kept = before < 3 or fraction_left
        word |= (ord(".") if kept else PAD) << (8 * (before + 1))
    return word


_HALF_HI = np.array([_half(b, v, 0) for b in range(1, 7) for v in range(1000)], np.uint64)
_HALF_LO = np.array([_half(b, v, 3) for b in range(1, 7) for v in range(1000)], np.uint64)


def _whole(before: int, value: int) -> int:
    """The word of a fixed-notation mantissa `value`000 with `before` digits before its point:
    with a zero low half, the high half's own trailing zeros may be cut too."""
    text = f"{value * 1000 / 10 ** (6 - before):.6g}" if value >= 100 else ""
    return sum(b << (8 * (i + 1)) for i, b in enumerate(text.encode().ljust(7, _PAD_BYTE)))


_WHOLE = np.array([_whole(b, v) for b in range(1, 7) for v in range(1000)], np.uint64)
_SIGN = np.array([PAD, ord("-")], np.uint64)  # indexed by the sign bit
# Values formatted at a time, in work arrays kept from block to block: fresh temporaries of
# this size cost page faults on every block, smaller blocks cost numpy's per-call overhead.
_CHUNK = 16_384


class _Scratch:
    """The work arrays of `_format`, `_CHUNK` values each."""

    def __init__(self) -> None:
        n = _CHUNK
        self.a, self.f, self.integer = np.empty(n), np.empty(n), np.empty(n)
        self.index, self.i, self.j = (np.empty(n, np.intp) for _ in range(3))
        self.hi, self.lo = np.empty(n, np.intp), np.empty(n, np.intp)
        self.word, self.sign = np.empty(n, np.uint64), np.empty(n, np.uint64)
        self.ok, self.b = np.empty(n, bool), np.empty(n, bool)
        self.negative = np.empty(n, np.uint64)


def format_numbers(values: np.ndarray) -> np.ndarray:
    """`'%.6g' % v` of each value, as rows of bytes (n, 8) or (n, 16) padded with PAD."""
    out = np.empty((np.size(values), 2), np.uint64)
    width = _format_all(values, out, _Scratch())
    return out.view(np.uint8)[:, :width]


def _format_all(values: np.ndarray, out: np.ndarray, scratch: _Scratch) -> int:
    """Fill `out` (n, 2) with the text of each value; return the bytes used (8 or 16)."""
    x = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    wide = False
    for a in range(0, len(x), _CHUNK):
        wide |= _format(x[a : a + _CHUNK], out[a : a + _CHUNK], scratch)
    return 16 if wide else 8


def _format(x: np.ndarray, out: np.ndarray, scratch: _Scratch) -> bool:
    """Fill `out` (n, 2) with the words of each value's text; whether any needs the second."""
    n = len(x)
    a, f, integer = scratch.a[:n], scratch.f[:n], scratch.integer[:n]
    index, i, j = scratch.index[:n], scratch.i[:n], scratch.j[:n]
    hi, lo, word, sign = scratch.hi[:n], scratch.lo[:n], scratch.word[:n], scratch.sign[:n]
    ok, b = scratch.ok[:n], scratch.b[:n]
    # The decimal exponent X from the binary one, one too low at most, then corrected.
    np.abs(x, out=a)
    np.right_shift(a.view(np.int64), 52, out=i)
    np.take(_EXPONENT, i, out=index, mode="clip")
    np.take(_NEXT, index, out=f, mode="clip")
    np.greater_equal(a, f, out=b)
    index += b
    # The six significant digits; a value near a tie, or rounding up to 10**(X + 1), goes to
    # Python (as do nan, inf, zero and the exponents not handled, whose scale is nan).
    np.take(_SCALE, index, out=f, mode="clip")
    np.multiply(a, f, out=f)
    np.rint(f, out=integer)
    np.subtract(f, integer, out=a)
    np.abs(a, out=a)
    np.less(a, _SAFE, out=ok)
    np.less(integer, 1e6, out=b)
    ok &= b
    np.logical_not(ok, out=b)
    fallback = np.flatnonzero(b)
    if len(fallback):
        integer[fallback] = 1e5
    np.copyto(i, integer, casting="unsafe")
    np.floor_divide(i, 1000, out=hi)
    np.multiply(hi, 1000, out=lo)
    np.subtract(i, lo, out=lo)
    # Each half's digits, with the point and the cut trailing zeros, from a table per layout.
    np.take(_BASE, index, out=i, mode="clip")
    np.add(hi, i, out=j)
    np.take(_HALF_HI, j, out=word, mode="clip")
    np.add(lo, i, out=j)
    np.take(_HALF_LO, j, out=sign, mode="clip")  # `sign` as scratch: contiguous, unlike out
    word |= sign
    negative = scratch.negative[:n]
    np.right_shift(x.view(np.uint64), np.uint64(63), out=negative)
    np.take(_SIGN, negative.view(np.int64), out=sign, mode="clip")
    np.bitwise_or(word, sign, out=out[:, 0])
    out[:, 1] = _ALL
    # A zero low half (1 value in 1,000) in fixed notation: one word from the high half.
    np.equal(lo, 0, out=ok)
    np.take(_LONG, index, out=b, mode="clip")
    whole = np.flatnonzero(ok)
    whole = whole[~b[whole]]
    if len(whole):
        out[whole, 0] = _WHOLE.take(hi[whole] + i[whole]) | sign[whole]
    apart = np.flatnonzero(b)
    wide = False
    if len(apart):
        out[apart] = _apart(hi[apart], lo[apart], index[apart] - _OFFSET, sign[apart])
        wide = bool((out[apart, 1] != _ALL).any())
    for k, v in zip(fallback.tolist(), x[fallback].tolist(), strict=True):
        text = f"{v:.6g}".encode()  # as "%.6g" % v
        row = out[k : k + 1].view(np.uint8)
        row[0] = PAD
        row[0, : len(text)] = np.frombuffer(text, np.uint8)
        wide |= len(text) > 8
    return wide


_PREFIX = np.array([_ascii("0." + "0" * (q - 1)) << 8 if q else 0 for q in range(5)], np.uint64)
_EXP_SIGN = np.array([_ascii("+"), _ascii("-")], np.uint64)


def _apart(hi: np.ndarray, lo: np.ndarray, exponent: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Two words per value whose text is longer than the halves' tables: "0.000ddd"
    (-4 <= X < 0) and "d.ddddde+XX"."""
    digits = (_DIGITS_HI.take(hi) | _DIGITS_LO.take(lo)) >> _U8  # d0 in byte 0
    zeros = _ZEROS.take(lo)
    zeros += (lo == 0) * _ZEROS.take(hi)
    small = (exponent < 0) & (exponent >= -4)
    # Small: sign, "0.", q - 1 zeros, then the digits.
    q = np.clip(-exponent, 1, 4)
    shift = (8 * (q + 2)).astype(np.uint64)
    size_small = q + 8 - zeros
    lo_small = sign | _PREFIX.take(q) | (digits << shift)
    hi_small = digits >> (np.uint64(64) - shift)
    # Exponent notation: sign, d0, the point and the digits left, then e+XX.
    mantissa = np.where(zeros >= 5, 2, 8 - zeros)
    plain = (digits << _U8) & _LOW.take(np.minimum(mantissa, 2))
    plain |= np.where(zeros >= 5, 0, np.uint64(ord(".")) << np.uint64(16)).astype(np.uint64)
    plain |= ((digits >> _U8) << np.uint64(24)) & _LOW.take(mantissa)
    power = np.abs(exponent)
    suffix = (
        np.uint64(ord("e"))
        | (_EXP_SIGN.take((exponent < 0).view(np.int8)) << _U8)
        | ((np.uint64(48) + (power // 10).astype(np.uint64)) << np.uint64(16))
        | ((np.uint64(48) + (power % 10).astype(np.uint64)) << np.uint64(24))
    )
    where = (8 * mantissa).astype(np.uint64)
    lo_exp = sign | plain | (suffix << where)
    hi_exp = np.where(mantissa > 4, suffix >> (np.uint64(64) - where), np.uint64(0))
    size = np.where(small, size_small, mantissa + 4)
    out = np.empty((len(hi), 2), np.uint64)
    out[:, 0] = np.where(small, lo_small, lo_exp)
    out[:, 0] |= ~_LOW.take(np.minimum(size, 8))
    out[:, 1] = np.where(small, hi_small, hi_exp).astype(np.uint64)
    out[:, 1] |= ~_LOW.take(np.clip(size - 8, 0, 8))
    return out


_GROUPS = np.array([list(f"{v:03d}".encode()) for v in range(1000)], np.uint8)


def format_integers(values: np.ndarray) -> np.ndarray:
    """`str(v)` of each integer, as rows of bytes (n, width) padded with PAD."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    magnitude = np.abs(v)
    digits = len(str(int(magnitude.max()))) if len(v) else 1
    groups = -(-digits // 3)
    out = np.empty((len(v), 1 + 3 * groups), np.uint8)
    out[:, 0] = np.where(v < 0, ord("-"), PAD)
    rest = magnitude
    for g in reversed(range(groups)):
        rest, part = np.divmod(rest, 1000)
        out[:, 1 + 3 * g : 4 + 3 * g] = _GROUPS[part]
    # Leading zeros become padding; the last digit stays (0 is "0").
    leading = np.logical_and.accumulate(out[:, 1:-1] == ord("0"), axis=1)
    out[:, 1:-1][leading] = PAD
    return out


def format_times(stamps: np.ndarray) -> np.ndarray:
    """Timestamps (datetime64 or int64 ns) as 'YYYY-MM-DD HH:MM:SS' bytes, (n, 19)."""
    seconds = np.asarray(stamps).astype("datetime64[ns]").astype("datetime64[s]")
    text = np.datetime_as_string(seconds, unit="s").astype("S19")
    out = text.view(np.uint8).reshape(-1, 19).copy()
    out[:, 10] = ord(" ")  # ISO's 'T'
    return out


def padded(texts: list[str]) -> np.ndarray:
    """Strings as rows of UTF-8 bytes (n, longest) padded with PAD."""
    encoded = [t.encode() for t in texts]
    out = np.full((len(encoded), max((len(e) for e in encoded), default=0)), PAD, np.uint8)
    for row, e in zip(out, encoded, strict=True):
        row[: len(e)] = np.frombuffer(e, np.uint8)
    return out


class ForecastLines:
    """CSV lines `[lead]origin,timestamp,step,value,...` of one file's forecasts.

    `prefix` starts every line (the file's name and its comma, or nothing); `step` is the grid
    step in ns with timestamps, 1 with row numbers.
    """

    def __init__(self, prefix: str, horizon: int, step: int, times: bool):
        self.prefix = np.frombuffer(prefix.encode(), np.uint8)
        self.horizon = horizon
        self.step = step
        self.times = times
        self.steps = format_integers(np.arange(1, horizon + 1))
        # Reused from block to block: fresh arrays of a block's size cost page faults each time.
        self._scratch = _Scratch()
        self._words = np.empty((0, 0, 2), np.uint64)
        self._bytes = np.empty(0, np.uint8)

    def text(
        self,
        last: np.ndarray,
        numbers: Sequence[np.ndarray],
        lead: np.ndarray | None = None,
        rows: int = 12_000,
    ) -> Iterator[bytes]:
        """The lines of origins whose last rows are at `last` (datetime64, or row numbers), about
        `rows` lines at a time.

        `numbers` are the value columns in order, each (origins, horizon); `lead` (origins,
        width) are bytes each origin's lines start with after the prefix (a series id and its
        comma), or None.
        """
        keys = np.asarray(last).astype(np.int64)
        per = max(1, rows // self.horizon)
        for a in range(0, len(keys), per):
            block = [column[a : a + per] for column in numbers]
            yield self._block(keys[a : a + per], block, lead, a)

    def _block(
        self, keys: np.ndarray, numbers: list[np.ndarray], lead: np.ndarray | None, first: int
    ) -> bytes:
        n, horizon, columns = len(keys), self.horizon, len(numbers)
        origin, stamps = self._stamps(keys)
        if self._words.shape[1] < n * horizon or len(self._words) < columns:
            self._words = np.empty((columns, n * horizon, 2), np.uint64)
        words = self._words[:columns, : n * horizon]
        used = 8
        for column, out in zip(numbers, words, strict=True):
            used = max(used, _format_all(column, out, self._scratch))
        values = words.view(np.uint8)[..., :used].reshape(columns, n, horizon, used)
        parts: list[tuple[np.ndarray, int]] = []  # (bytes broadcast to (n, horizon, w), width)
        if len(self.prefix):
            parts.append((self.prefix[None, None, :], len(self.prefix)))
        if lead is not None:
            mine = lead[first : first + n]
            parts.append((mine[:, None, :], mine.shape[1]))
        parts += [
            (origin[:, None, :], origin.shape[1] + 1),
            (stamps, stamps.shape[2] + 1),
            (self.steps[None, :, :], self.steps.shape[1] + 1),
        ]
        width = sum(w for _, w in parts)
        number_width = used + 1
        line = width + columns * number_width
        if len(self._bytes) < n * horizon * line:
            self._bytes = np.empty(n * horizon * line, np.uint8)
        out = self._bytes[: n * horizon * line].reshape(n, horizon, line)
        at = 0
        for field, w in parts:
            size = field.shape[-1]
            out[:, :, at : at + size] = field
            if w > size:
                out[:, :, at + size] = ord(",")
            at += w
        cells = np.reshape(out[:, :, width:], (n, horizon, columns, number_width), copy=False)
        cells[..., :-1] = np.moveaxis(values, 0, 2)
        cells[..., -1] = ord(",")
        cells[:, :, -1, -1] = ord("\n")
        return out.tobytes().translate(None, _PAD_BYTE)

    def _stamps(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Text of each origin's time (n, w) and of its forecast steps' (n, horizon, w)."""
        ahead = keys[:, None] + np.arange(1, self.horizon + 1) * self.step
        # Consecutive origins share most of their steps' times: each distinct time formatted once.
        wanted = np.concatenate([keys, ahead.reshape(-1)])
        offsets = wanted - keys[0]
        slots = offsets // self.step
        if (slots * self.step == offsets).all() and slots.max() - slots.min() < 4 * len(wanted):
            low = int(slots.min())
            distinct = keys[0] + np.arange(low, int(slots.max()) + 1) * self.step
            where = slots - low
        else:
            distinct, where = np.unique(wanted, return_inverse=True)
        text = format_times(distinct) if self.times else format_integers(distinct)
        picked = text[where]
        return picked[: len(keys)], picked[len(keys) :].reshape(len(keys), self.horizon, -1)
