"""Rules for the CSV reader and writer: any image size, pixel scale and labels; every bad file is one
one-line DataError naming the file, its row and column."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from common.errors import DataError
from data.csv import LABEL, read_csv, write_csv

RNG = np.random.default_rng(0)
DIGITS = RNG.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)  # MNIST-sized, made up
DIGIT_LABELS = np.array([3, 1, 4, 1, 5, 9])


def csv_file(tmp_path: Path, *lines: str, name: str = "set.csv") -> Path:
    """A CSV file with exactly these lines."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def grid(rows: list[list[object]], label_at: int = 0, label: str = LABEL) -> list[str]:
    """Header (label column at label_at, then pixel0..) and rows: each row is the label, then pixels."""
    n = len(rows[0]) - 1 if rows else 4
    header = [f"pixel{k}" for k in range(n)]
    header.insert(label_at, label)
    lines = [",".join(header)]
    for row in rows:
        cells = [str(v) for v in row[1:]]
        cells.insert(label_at, str(row[0]))
        lines.append(",".join(cells))
    return lines


def csv_error(path: Path, **kwargs: object) -> str:
    """Read path, insist on a one-line DataError naming the file, and return its message."""
    with pytest.raises(DataError) as info:
        read_csv(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


# ---- round trips -----------------------------------------------------------------------------


# Rule: write_csv then read_csv gives the same uint8 images and int64 labels, wherever the label is.
@pytest.mark.parametrize("label_position", [0, 392, 784])
def test_round_trip_uint8(tmp_path: Path, label_position: int) -> None:
    path = tmp_path / "digits.csv"
    write_csv(path, DIGITS, DIGIT_LABELS, label_position=label_position)
    assert path.read_text().splitlines()[0].split(",")[label_position] == "label"
    images, labels = read_csv(path)
    assert images.dtype == np.uint8 and images.shape == (6, 28, 28)
    assert labels.dtype == np.int64
    assert np.array_equal(images, DIGITS) and np.array_equal(labels, DIGIT_LABELS)


# Rule: float32 images, str labels and a non-square shape round-trip exactly, dtypes included.
def test_round_trip_float32_str_labels_non_square(tmp_path: Path) -> None:
    images = RNG.random((4, 3, 5), dtype=np.float32) * 2 - 1
    labels = np.array(["Ankle boot", "T-shirt/top", 'say "hi"', "Bag, small"])
    path = tmp_path / "fashion.csv"
    write_csv(path, images, labels, label_position=7, label_column="class")
    back, back_labels = read_csv(path, label_column="class", image_shape=(3, 5))
    assert back.dtype == np.float32 and np.array_equal(back, images)
    assert back_labels.dtype == labels.dtype and back_labels.tolist() == labels.tolist()


# Rule: write_csv accepts (N, P) images and writes integers as integers, floats as floats.
def test_write_header_and_number_spelling(tmp_path: Path) -> None:
    path = tmp_path / "flat.csv"
    write_csv(path, np.array([[0, 16, 255]], dtype=np.int64), np.array(["cat"]), label_position=1)
    write_csv(tmp_path / "f.csv", np.array([[0.25, 1.0]], dtype=np.float32), np.array([7]))
    assert path.read_text() == "pixel0,label,pixel1,pixel2\n0,cat,16,255\n"
    assert (tmp_path / "f.csv").read_text() == "label,pixel0,pixel1\n7,0.25,1.0\n"


# ---- pixels ----------------------------------------------------------------------------------


# Rule: whole-number pixels in 0..16 (sklearn's 8x8 digits) read as uint8 with their values kept.
def test_pixels_0_to_16_are_uint8(tmp_path: Path) -> None:
    images = (np.arange(2 * 64).reshape(2, 8, 8) % 17).astype(np.int64)
    write_csv(tmp_path / "d.csv", images, np.array([0, 1]))
    back, _ = read_csv(tmp_path / "d.csv")
    assert back.dtype == np.uint8 and back.shape == (2, 8, 8) and np.array_equal(back, images)


# Rule: fractional pixels read as float32 with their values.
def test_float_pixels_are_float32(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0.25, 0.5, 0.0, 1.0], [2, 0, 1, 0.75, 0.125]]))
    images, _ = read_csv(path)
    assert images.dtype == np.float32
    assert images.tolist() == [[[0.25, 0.5], [0.0, 1.0]], [[0.0, 1.0], [0.75, 0.125]]]


# Rule: pixels outside 0..255 (negative, 256, beyond int16) are no error: they read as float32.
@pytest.mark.parametrize("value", [-1, 256, 40000])
def test_out_of_byte_range_pixels_are_float32(tmp_path: Path, value: int) -> None:
    images, _ = read_csv(csv_file(tmp_path, *grid([[0, 0, 255, 7, value]])))
    assert images.dtype == np.float32 and images.tolist() == [[[0.0, 255.0], [7.0, float(value)]]]


# Rule: pixels spelled as whole floats (3.0) in 0..255 are whole numbers, so uint8.
def test_whole_float_spelling_is_uint8(tmp_path: Path) -> None:
    images, _ = read_csv(csv_file(tmp_path, *grid([[0, "3.0", "0.0", "255.0", "1e2"]])))
    assert images.dtype == np.uint8 and images.tolist() == [[[3, 0], [255, 100]]]


# ---- labels ----------------------------------------------------------------------------------


# Rule: whole-number labels are int64 with no 0-9 limit: negative, 10, large.
def test_int_labels_beyond_9(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[10, 0, 0, 0, 0], [-3, 0, 0, 0, 0], ["+1234567", 0, 0, 0, 0]]))
    _, labels = read_csv(path)
    assert labels.dtype == np.int64 and labels.tolist() == [10, -3, 1234567]


# Rule: word labels are strings, stripped of surrounding spaces, inner spaces and quoted commas kept.
def test_string_labels(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label,a,b,c,d", " Ankle boot ,0,0,0,0", '"Bag, small",0,0,0,0', "NA,0,0,0,0")
    _, labels = read_csv(path)
    assert labels.dtype.kind in "OU" and labels.tolist() == ["Ankle boot", "Bag, small", "NA"]


# Rule: if some labels are numbers and others words, all are strings, spelled as in the file.
def test_mixed_labels_are_strings(tmp_path: Path) -> None:
    _, labels = read_csv(csv_file(tmp_path, *grid([["007", 0, 0, 0, 0], ["seven", 0, 0, 0, 0]])))
    assert labels.dtype.kind in "OU" and labels.tolist() == ["007", "seven"]


# Rule: the label column is found by name anywhere, and label_column names another column.
def test_label_column_elsewhere_and_renamed(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[5, 1, 2, 3, 4]], label_at=2, label="digit"))
    images, labels = read_csv(path, label_column="digit")
    assert images.tolist() == [[[1, 2], [3, 4]]] and labels.tolist() == [5]


# ---- shape -----------------------------------------------------------------------------------


# Rule: a non-square pixel count without image_shape is an error suggesting the closest factor pair.
def test_non_square_without_shape(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[0] * 61]))
    assert csv_error(path) == (
        f"{path}: 60 pixel columns are not a square image; give --image-shape HxW (e.g. 6x10)"
    )


# Rule: a prime pixel count gets no factor-pair example.
def test_prime_pixel_count(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[0] * 62]))
    assert csv_error(path) == f"{path}: 61 pixel columns are not a square image; give --image-shape HxW"


# Rule: a non-square image reads with image_shape=(H, W), row-major in pixel-column order.
def test_non_square_with_shape(tmp_path: Path) -> None:
    images, _ = read_csv(csv_file(tmp_path, *grid([[0, *range(6)]])), image_shape=(2, 3))
    assert images.shape == (1, 2, 3) and images.tolist() == [[[0, 1, 2], [3, 4, 5]]]


# Rule: an image_shape whose H*W is not the pixel count is an error naming both.
def test_shape_mismatch(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[0] * 61]))
    assert csv_error(path, image_shape=(8, 8)) == (
        f"{path}: 60 pixel columns do not fill --image-shape 8x8 (64 pixels)"
    )


# Rule: a non-positive image_shape is an error.
def test_shape_not_positive(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[0, 1, 2, 3, 4]]))
    assert csv_error(path, image_shape=(-2, -2)) == f"{path}: --image-shape -2x-2 must be positive"


# ---- bad cells -------------------------------------------------------------------------------


# Rule: a cell that is not a number is reported with its row, column and value.
def test_non_numeric_cell(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, 0], [2, 0, 0, "abc", 0]]))
    assert csv_error(path) == f"{path}: row 2 (line 3), column 'pixel2': non-numeric value 'abc'"


# Rule: an empty cell is reported with its row and column.
def test_empty_cell(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, 0], [2, 0, "", 0, 0]]))
    assert csv_error(path) == f"{path}: row 2 (line 3), column 'pixel1': empty cell"


# Rule: NaN or infinity in a pixel cell is reported as not a finite number, with its spelling.
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_not_finite_cell(tmp_path: Path, value: str) -> None:
    path = csv_file(tmp_path, *grid([[1, 0.5, 0, 0, 0], [2, 0, 0, 0, value]]))
    message = csv_error(path)
    assert message == f"{path}: row 2 (line 3), column 'pixel3': not a finite number '{value}'"


# Rule: a number too large for a float32 pixel is reported with its value.
def test_value_beyond_float32(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, "1e300"]]))
    assert csv_error(path) == (
        f"{path}: row 1 (line 2), column 'pixel3': value '1e+300' too large for a float32 pixel"
    )


# Rule: of several bad cells the first in file order (row, then column) is reported.
def test_first_bad_cell_in_file_order(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, 0], [2, 0, 0, 0, ""], [3, "x", 0, 0, 0]]))
    assert csv_error(path) == f"{path}: row 2 (line 3), column 'pixel3': empty cell"


# Rule: an empty label cell is reported with its row and the label column.
@pytest.mark.parametrize("pixel", ["7", "abc"])  # found by the fast parse, and by the re-read
def test_empty_label(tmp_path: Path, pixel: str) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, 0], [" ", 0, 0, 0, 0], [3, pixel, 0, 0, 0]], label_at=4))
    assert csv_error(path) == f"{path}: row 2 (line 3), column 'label': empty label"


# ---- bad files -------------------------------------------------------------------------------


# Rule: without the label column the error lists the columns found and suggests --label-column.
def test_no_label_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[1, 0, 0, 0, 0]], label="digit"))
    assert csv_error(path) == (
        f"{path}: no 'label' column (found 5 columns: 'digit', 'pixel0', 'pixel1', 'pixel2', 'pixel3'); "
        "give --label-column NAME to use another column as the label (perhaps 'digit')"
    )


# Rule: a label column far from the start is still suggested: it is the one not named like the pixels.
def test_no_label_column_suggests_the_odd_one(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *grid([[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]], label_at=7, label="kind"))
    assert csv_error(path).endswith("give --label-column NAME to use another column as the label (perhaps 'kind')")


# Rule: a header of numbers (no header row) gets the 'is the header row missing?' hint.
def test_numeric_header(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "5,0,0,0,0", "3,0,0,0,0")
    assert csv_error(path) == (
        f"{path}: no 'label' column (found 5 columns: '5', '0', '0', '0', '0'; "
        "is the header row missing?)"
    )


# Rule: a label column and nothing else is an error: there are no pixels.
def test_no_pixel_columns(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label", "1")
    assert csv_error(path) == f"{path}: no pixel columns besides 'label'"


# Rule: a header with no data rows is an error.
def test_header_only(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label,a,b,c,d")
    assert csv_error(path) == f"{path}: header but no data rows"


# Rule: a row with more fields than the header is malformed CSV, with the line.
def test_malformed_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label,a,b,c,d", "1,0,0,0,0", "2,0,0,0,0,9")
    assert csv_error(path) == f"{path}: malformed CSV: Expected 5 fields in line 3, saw 6"


# Rule: a surplus field in the first data row is malformed CSV too, not a row index shifting columns.
def test_surplus_field_in_first_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label,a,b,c,d", "1,0,0,0,0,9", "2,0,0,0,0,9")
    assert csv_error(path) == f"{path}: malformed CSV: a row has more fields than the header"


# Rule: two columns named like the label column are an error, not one label and one pixel.
def test_duplicate_label_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "label,a,b,label,c", "1,0,0,1,0")
    assert csv_error(path) == f"{path}: 2 columns named 'label'"


# Rule: binary junk (here a gzip file) is not a text CSV file.
def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(gzip.compress(b"label,a\n1,2\n"))
    assert "not a text CSV file" in csv_error(path)


# Rule: an empty CSV file is reported as empty.
def test_empty_file(tmp_path: Path) -> None:
    path = csv_file(tmp_path, name="empty.csv")
    path.write_text("")
    assert csv_error(path) == f"{path}: empty file (0 bytes)"


# Rule: a missing CSV file is reported as not found.
def test_missing_file(tmp_path: Path) -> None:
    assert csv_error(tmp_path / "missing.csv") == f"{tmp_path / 'missing.csv'}: file not found"
