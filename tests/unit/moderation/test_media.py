"""PDQ media hashes and hash banks, on images made here with numpy and Pillow."""
import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from moderation.media import DEFAULT_DISTANCE, HashBank, MediaError, PdqHash, load_bank, pdq_hash, read_bank_csv
from warden.cli.main import cli


def shapes(seed: int, size=(320, 240)) -> Image.Image:
    """A picture of coloured ellipses: broad-spectrum, like a photograph, unlike a pure gradient."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        draw.ellipse([x, y, x + int(rng.integers(20, 120)), y + int(rng.integers(20, 120))],
                     fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return image


def resized_jpeg(image: Image.Image, size=(200, 150), quality=70) -> bytes:
    out = io.BytesIO()
    image.resize(size).save(out, "JPEG", quality=quality)
    return out.getvalue()


def waves() -> Image.Image:
    y, x = np.mgrid[0:200, 0:300].astype(float)
    a = 127 + 120 * np.sin(x / 13.0) * np.cos(y / 29.0)
    return Image.fromarray(np.stack([a, 255 - a, a * 0.5 + 60], -1).clip(0, 255).astype(np.uint8), "RGB")


def blocks() -> Image.Image:
    cells = np.random.default_rng(7).integers(0, 256, (10, 15, 3))
    return Image.fromarray(np.kron(cells, np.ones((20, 20, 1))).astype(np.uint8), "RGB")


@pytest.mark.parametrize("make, expected, quality", [
    # computed with the reference implementation (the `pdqhash` package, Meta's C++) on the same pixels
    (waves, "007fbf80fb80ff80007fff80007fff80007fff80007fff80007fff80ff80007f", 57),
    (blocks, "37e17fc02f8a8620c91373f9cc37842674ec59d7d074c03ec81e756bc1e63ab4", 100),
])
def test_hashes_are_the_reference_implementations(make, expected, quality):
    found = pdq_hash(make())
    assert (found.hex, found.quality) == (expected, quality)


def test_same_bits_as_the_reference_package_where_it_is_installed():
    pdqhash = pytest.importorskip("pdqhash", reason="pdqhash (C++ reference) needs a compiler to install")
    for seed in range(5):
        image = shapes(seed)
        bits, quality = pdqhash.compute(np.asarray(image))
        reference = int("".join(str(int(b)) for b in bits), 2)
        assert pdq_hash(image) == PdqHash(reference, int(quality))


def test_a_resized_re_encoded_copy_matches_and_a_different_image_does_not():
    bad = pdq_hash(shapes(1))
    bank = HashBank(read_bank_csv(f"{bad.hex},{bad.quality},known.jpg\n", "known-bad"))
    copy = pdq_hash(resized_jpeg(shapes(1)))
    [match] = bank.match(copy)
    assert match.bank_id == "known-bad" and 0 < match.distance <= DEFAULT_DISTANCE
    assert bank.match(pdq_hash(shapes(2))) == []
    assert bad.distance(pdq_hash(shapes(2))) > 90      # unrelated images sit near 128 bits apart


def test_the_distance_is_configurable():
    bad, copy = pdq_hash(shapes(3)), pdq_hash(resized_jpeg(shapes(3)))
    distance = bad.distance(copy)
    entries = read_bank_csv(f"pdq {bad.hex}\n", "b")
    assert HashBank(entries, max_distance=distance).match(copy)
    assert HashBank(entries, max_distance=distance - 1).match(copy) == []


def test_flat_images_have_low_quality_and_match_nothing():
    flat = pdq_hash(Image.new("RGB", (200, 200), (120, 130, 140)))
    assert flat.quality < 50
    assert HashBank([*read_bank_csv(f"pdq {flat.hex}\n", "b")]).match(flat) == []


def test_bank_files_in_the_threatexchange_and_hma_forms():
    a, b = pdq_hash(shapes(4)), pdq_hash(shapes(5))
    with_header = ("id,signal_type,signal_value,category\n"
                   f"101,pdq,{a.hex},csam\n"
                   f"102,md5,d41d8cd98f00b204e9800998ecf8427e,csam\n"
                   f"103,pdq,{b.hex.upper()},terrorism\n")
    assert [(e.entry_id, e.hash.value) for e in read_bank_csv(with_header, "x")] == [("101", a.value),
                                                                                     ("103", b.value)]
    reference_lines = f"# from pdq-photo-hasher\n{a.hex},{a.quality},one.jpg\n\n{b.hex},{b.quality},two.jpg\n"
    assert [e.hash for e in read_bank_csv(reference_lines, "x")] == [a, b]
    assert [e.hash.value for e in read_bank_csv(f"pdq {a.hex}\npdq {b.hex}\n", "x")] == [a.value, b.value]


@pytest.mark.parametrize("text, line", [
    ("hash,quality\nabc,100\n", 2),
    (f"{'0' * 64},100,a.jpg\n{'g' * 64},100,b.jpg\n", 2),
    ("pdq 1234\n", 1),
])
def test_a_malformed_bank_line_is_refused_with_its_number(text, line):
    with pytest.raises(MediaError, match=f"line {line}"):
        read_bank_csv(text, "x")


def test_warden_moderation_hash_prints_hash_quality_and_matches(tmp_path):
    original, copy, other = tmp_path / "original.png", tmp_path / "copy.jpg", tmp_path / "other.png"
    shapes(6).save(original)
    copy.write_bytes(resized_jpeg(shapes(6)))
    shapes(7).save(other)
    runner = CliRunner()
    first = runner.invoke(cli, ["moderation", "hash", str(original)])
    assert first.exit_code == 0, first.output
    hex_, quality, path = first.stdout.strip().split(",")
    assert (hex_, int(quality), path) == (pdq_hash(original).hex, pdq_hash(original).quality, str(original))
    bank = tmp_path / "bank.csv"
    bank.write_text(first.stdout)                   # the command's own output is a bank file
    second = runner.invoke(cli, ["moderation", "hash", str(copy), str(other), "--bank", str(bank)])
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert lines[0].endswith(f",{copy}") and lines[1].startswith("  match bank=bank entry=")
    assert lines[2].endswith(f",{other}") and len(lines) == 3
    assert load_bank(bank).match(pdq_hash(copy))


def test_a_file_that_is_not_an_image_is_reported_and_the_others_still_hashed(tmp_path):
    text, image = tmp_path / "notes.txt", tmp_path / "image.png"
    text.write_text("not an image")
    shapes(8).save(image)
    result = CliRunner().invoke(cli, ["moderation", "hash", str(text), str(image)])
    assert result.exit_code == 1
    assert "not an image" in result.stderr
    assert result.stdout.strip().endswith(f",{image}")


def test_a_large_photo_is_hashed_at_bounded_size_and_still_matches_its_copies():
    large = shapes(9, size=(3000, 2000))
    assert pdq_hash(large).distance(pdq_hash(resized_jpeg(large, size=(640, 427)))) <= 16


@pytest.mark.parametrize("limit", [80_000, 10_000])   # 400x300 = 120,000 px: Pillow's warning range, its error range
def test_an_image_over_the_decompression_bomb_size_is_refused_not_decoded(tmp_path, monkeypatch, limit):
    path = tmp_path / "big.png"
    shapes(10, size=(400, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(MediaError, match="not an image"):
        pdq_hash(path)
