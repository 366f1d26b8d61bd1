"""Media hash banks: PDQ hashes of images, matched against banks of known-bad hashes.

PDQ (Meta's perceptual hash, the one ThreatExchange, HMA, NCMEC and StopNCII
exchange) is computed here with numpy and Pillow, following the published
algorithm: luminance, a two-pass Jarosz (box) filter, decimation to 64x64, a
16x16 DCT without the DC row and column, and one bit per coefficient above the
median. The `pdqhash` package wraps the reference C++ but publishes no wheels,
only a source archive that needs a C++ compiler to install; this module needs
none. `tests/unit/moderation/test_media.py` checks it against the reference.

A hash is a 256-bit integer; its hex form is the reference's (64 hex digits,
row 15 first). Two images are near-duplicates when the Hamming distance of
their hashes is at most the bank's threshold (31 by default, the reference's
recommendation). Hashes of quality below 50 carry little signal (flat or tiny
images) and match nothing.
"""
from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_DISTANCE = 31
MIN_QUALITY = 50
# Larger images are first box-downscaled to this longest side: memory stays bounded (a 12-megapixel
# photo would need 300 MB of floats), and the hash moves by a few bits at most, far inside a match distance.
MAX_SIDE = 1024
_LUMA = np.array([0.299, 0.587, 0.114])


class MediaError(ValueError):
    """An image or bank file that cannot be used; the message says why."""


@dataclass(frozen=True)
class PdqHash:
    value: int        # 256 bits; bit 16*i + j is DCT coefficient (i, j)
    quality: int      # 0-100: how much gradient the image has

    @property
    def hex(self) -> str:
        return f"{self.value:064x}"

    @classmethod
    def from_hex(cls, text: str, quality: int = 100) -> "PdqHash":
        text = text.strip().lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise MediaError(f"not a PDQ hash (64 hex digits): {text[:80]!r}")
        return cls(int(text, 16), quality)

    def distance(self, other: "PdqHash") -> int:
        return (self.value ^ other.value).bit_count()


def _box_filter(values: np.ndarray, window: int, axis: int) -> np.ndarray:
    """Mean over a window of `window` cells around each cell along `axis`, cut at the edges (the reference's box1D)."""
    n = values.shape[axis]
    half = (window + 2) // 2
    before, after = window - half, half - 1
    index = np.arange(n)
    lo, hi = np.maximum(index - before, 0), np.minimum(index + after, n - 1) + 1
    if axis == 0:
        sums = np.zeros((n + 1, values.shape[1]))
        np.cumsum(values, axis=0, out=sums[1:])
        return (sums[hi] - sums[lo]) / (hi - lo)[:, None]
    sums = np.zeros((values.shape[0], n + 1))
    np.cumsum(values, axis=1, out=sums[:, 1:])
    return (sums[:, hi] - sums[:, lo]) / (hi - lo)


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """16 x 64: DCT-II rows 1..16 (the DC row left out), scaled as in the reference."""
    i = np.arange(1, 17).reshape(16, 1)
    j = np.arange(64).reshape(1, 64)
    return np.sqrt(2.0 / 64.0) * np.cos((np.pi / 2 / 64.0) * i * (2 * j + 1))


def _torben_median(values: np.ndarray) -> float:
    """The reference's median of 256 values: the lower middle one."""
    return float(np.sort(values, axis=None)[(values.size - 1) // 2])


def pdq_from_luma(luma: np.ndarray) -> PdqHash:
    rows, cols = luma.shape
    if rows < 5 or cols < 5:
        return PdqHash(0, 0)
    blurred = luma.astype(np.float64)
    window_rows = (cols + 2 * 64 - 1) // (2 * 64)
    window_cols = (rows + 2 * 64 - 1) // (2 * 64)
    for _ in range(2):
        blurred = _box_filter(blurred, window_rows, axis=1)
        blurred = _box_filter(blurred, window_cols, axis=0)
    pick_rows = ((np.arange(64) + 0.5) * rows / 64).astype(int)
    pick_cols = ((np.arange(64) + 0.5) * cols / 64).astype(int)
    small = blurred[np.ix_(pick_rows, pick_cols)]
    quality = _quality(small)
    dct = _dct_matrix()
    coefficients = dct @ small @ dct.T
    bits = (coefficients > _torben_median(coefficients)).ravel()
    value = int.from_bytes(np.packbits(bits[::-1]).tobytes(), "big")
    return PdqHash(value, quality)


def _quality(small: np.ndarray) -> int:
    """The reference's gradient measure: the sum of |neighbour differences| (in % of 255), over 90, at most 100."""
    vertical = np.trunc((small[:-1, :] - small[1:, :]) * 100 / 255)
    horizontal = np.trunc((small[:, :-1] - small[:, 1:]) * 100 / 255)
    total = np.abs(vertical).sum() + np.abs(horizontal).sum()
    return int(min(total / 90, 100))


def pdq_hash(image: Image.Image | bytes | str | Path) -> PdqHash:
    """The PDQ hash of an image (a Pillow image, encoded bytes or a file path).

    An image over Pillow's decompression-bomb size (MAX_IMAGE_PIXELS, 89 megapixels) is refused
    rather than decoded: Pillow only warns below twice that size.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _pdq_of(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"not an image Warden can read: {exc}") from None


def _pdq_of(image: Image.Image | bytes | str | Path) -> PdqHash:
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
    elif not isinstance(image, Image.Image):
        image = Image.open(image)
    if max(image.size) > MAX_SIDE:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))   # JPEG: decode at a reduced scale, cheaply
        scale = MAX_SIDE / max(image.size)
        if scale < 1:
            image = image.convert("RGB").resize((max(1, round(image.width * scale)),
                                                 max(1, round(image.height * scale))), Image.Resampling.BOX)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    return pdq_from_luma(rgb @ _LUMA)


@dataclass(frozen=True)
class BankEntry:
    hash: PdqHash
    bank_id: str
    entry_id: str       # the id the bank's source gave it (indicator id, bank content id), or its line number


@dataclass(frozen=True)
class MediaMatch:
    bank_id: str
    entry_id: str
    distance: int


class HashBank:
    """Known-bad PDQ hashes; `match` finds those within `max_distance` bits of an image's hash."""

    def __init__(self, entries: list[BankEntry], max_distance: int = DEFAULT_DISTANCE,
                 min_quality: int = MIN_QUALITY):
        if not 0 <= max_distance <= 256:
            raise MediaError(f"a Hamming distance is 0 to 256, not {max_distance}")
        self.entries = entries
        self.max_distance = max_distance
        self.min_quality = min_quality
        words = [[(e.hash.value >> (64 * k)) & 0xFFFF_FFFF_FFFF_FFFF for k in range(4)] for e in entries]
        self._words = np.array(words, dtype=np.uint64).reshape(len(entries), 4)

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, probe: PdqHash) -> list[MediaMatch]:
        """Every entry within the distance, nearest first; nothing for a low-quality probe."""
        if probe.quality < self.min_quality or not self.entries:
            return []
        words = np.array([(probe.value >> (64 * k)) & 0xFFFF_FFFF_FFFF_FFFF for k in range(4)], dtype=np.uint64)
        distances = np.bitwise_count(self._words ^ words).sum(axis=1)
        near = np.flatnonzero(distances <= self.max_distance)
        return sorted((MediaMatch(self.entries[i].bank_id, self.entries[i].entry_id, int(distances[i]))
                       for i in near), key=lambda m: (m.distance, m.bank_id, m.entry_id))


_HASH_COLUMNS = ("hash", "pdq", "signal", "signal_value", "indicator", "content_hash")
_TYPE_COLUMNS = ("signal_type", "indicator_type", "type")
_ID_COLUMNS = ("id", "bank_content_id", "indicator_id", "content_id")


def read_bank_csv(text: str, bank_id: str) -> list[BankEntry]:
    """PDQ hashes from the formats ThreatExchange and HMA tools write.

    - CSV with a header naming the hash column (`hash`, `pdq`, `signal`, `signal_value`,
      `indicator`), optionally a type column (`signal_type`, `indicator_type`: rows of
      other types than PDQ are skipped), an id column (`id`, `bank_content_id`,
      `indicator_id`) and `quality`;
    - headerless `hash,quality,filename` rows, as PDQ's reference hasher prints them;
    - ThreatExchange signal files: `pdq <hash>` a line.
    Blank lines and `#` comments are skipped; any other malformed line is an error
    naming its line, so that a half-read bank never goes live.
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    first = lines[0][1]
    if "," not in first and len(first.split()) == 2:
        return [_signal_line(n, line, bank_id) for n, line in lines]
    rows = list(csv.reader(line for _, line in lines))
    header = [c.strip().lower() for c in rows[0]]
    hash_column = next((header.index(c) for c in _HASH_COLUMNS if c in header), None)
    if hash_column is None:
        return [_hash_row(number, row[0], row[1] if len(row) > 1 else "", None, bank_id)
                for (number, _), row in zip(lines, rows)]
    type_column = next((header.index(c) for c in _TYPE_COLUMNS if c in header), None)
    id_column = next((header.index(c) for c in _ID_COLUMNS if c in header), None)
    quality_column = header.index("quality") if "quality" in header else None
    entries = []
    for (number, _), row in zip(lines[1:], rows[1:]):
        if type_column is not None and type_column < len(row) and "pdq" not in row[type_column].lower():
            continue
        if hash_column >= len(row):
            raise MediaError(f"line {number}: no hash column")
        quality = row[quality_column] if quality_column is not None and quality_column < len(row) else ""
        entry_id = row[id_column] if id_column is not None and id_column < len(row) else None
        entries.append(_hash_row(number, row[hash_column], quality, entry_id, bank_id))
    return entries


def _hash_row(number: int, value: str, quality: str, entry_id: str | None, bank_id: str) -> BankEntry:
    try:
        parsed = PdqHash.from_hex(value, int(quality) if quality.strip() else 100)
    except (MediaError, ValueError) as exc:
        raise MediaError(f"line {number}: {exc}") from None
    return BankEntry(parsed, bank_id, entry_id or str(number))


def _signal_line(number: int, line: str, bank_id: str) -> BankEntry:
    kind, _, value = line.strip().partition(" ")
    if "pdq" not in kind.lower():
        raise MediaError(f"line {number}: not a PDQ signal ({kind[:40]!r})")
    return _hash_row(number, value, "", None, bank_id)


def load_bank(path: Path, bank_id: str | None = None, max_distance: int = DEFAULT_DISTANCE) -> HashBank:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot read {path}: {exc}") from None
    try:
        entries = read_bank_csv(text, bank_id or path.stem)
    except MediaError as exc:
        raise MediaError(f"{path}: {exc}") from None
    return HashBank(entries, max_distance)
