"""The data-validation contract: what a user sees when a dataset does not meet its spec.

Bad files are small edits of the first rows of the bundled UCI Taiwan credit-default data,
written to a temporary folder together with a copy of the bundled dataset spec that points
at them. Every error must be one of credit-scorer's own exceptions and name the column, the
first offending rows (0-based row and file line) and, where there is one, the bad value.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from credit_scorer.core.errors import DatasetIntegrityError, DataValidationError
from credit_scorer.domain.config import DatasetSpec, bundled_resource, load_dataset_spec, training_config
from credit_scorer.domain.data import (
    MAX_ROWS_SHOWN,
    DataQualityReport,
    load_dataset,
    read_data_bytes,
    split_dataset,
    validate_dataset,
)

BUNDLED_DATA = "package:data/default_of_credit_card_clients.csv.gz"
BUNDLED_SHA256 = "4edce6da569b2c30788a85fd98a9bafb1a983e8ca1a7aac875dd7ff853cbd0bb"
TARGET = "default payment next month"
SUBSET_ROWS = 200


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_raw() -> pd.DataFrame:
    """The whole bundled data file, parsed by pandas alone (independently of credit_scorer)."""
    return pd.read_csv(io.BytesIO(read_data_bytes(BUNDLED_DATA)))


@pytest.fixture
def raw(full_raw: pd.DataFrame) -> pd.DataFrame:
    """A fresh copy of the first rows of the bundled data, free to modify."""
    return full_raw.head(SUBSET_ROWS).copy()


@pytest.fixture(scope="module")
def full_dataset() -> tuple[DatasetSpec, pd.DataFrame, DataQualityReport]:
    """The bundled spec and its dataset, loaded and validated once for this module."""
    spec = load_dataset_spec()
    frame, _ = load_dataset(spec)
    clean, report = validate_dataset(frame, spec, source="bundled data")
    return spec, clean, report


def write_spec(tmp_path: Path, data_file: Path, **source: Any) -> DatasetSpec:
    """Copy the bundled spec to tmp_path with ``source.file`` set to data_file and no sha256."""
    spec = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text(encoding="utf-8"))
    spec["source"]["file"] = str(data_file)
    spec["source"].pop("sha256")
    spec["source"].update(source)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load_dataset_spec(path)


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def load_and_validate(tmp_path: Path, data_file: Path, **source: Any) -> tuple[pd.DataFrame, DataQualityReport]:
    """What `credit-scorer run` does with a data file: load it, then validate it."""
    spec = write_spec(tmp_path, data_file, **source)
    frame, _ = load_dataset(spec)
    return validate_dataset(frame, spec, source=str(data_file))


def validation_error(tmp_path: Path, frame: pd.DataFrame) -> str:
    """The message of the DataValidationError raised for frame written as a CSV."""
    csv = write_csv(tmp_path, frame)
    with pytest.raises(DataValidationError) as caught:
        load_and_validate(tmp_path, csv)
    message = str(caught.value)
    assert str(csv) in message, "the message must name the file"
    return message


def failure_lines(message: str, column: str) -> list[str]:
    """The message lines about one column."""
    return [line for line in message.splitlines() if f"column {column!r}" in line]


def with_value(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    """frame with one cell replaced (the column widened to object so any value fits)."""
    out = frame.astype({column: object})
    out.loc[row, column] = value
    return out


# ---------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------
def test_missing_column_is_named(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, raw.drop(columns="AGE"))

    lines = failure_lines(message, "AGE")
    assert len(lines) == 1
    assert "missing" in lines[0]


def test_missing_target_column_is_named(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, raw.drop(columns=TARGET))

    assert any("missing" in line for line in failure_lines(message, TARGET))


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------
def test_text_in_numeric_column_names_column_row_and_value(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, with_value(raw, 3, "LIMIT_BAL", "abc"))

    lines = failure_lines(message, "LIMIT_BAL")
    assert lines, message
    assert any("is a number" in line for line in lines)
    assert all("row 3 (line 5)" in line and "'abc'" in line for line in lines)
    assert not failure_lines(message, "AGE"), "only the broken column is reported"


def test_fraction_in_int_column_names_column_row_and_value(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, with_value(raw, 3, "AGE", 1.5))

    lines = failure_lines(message, "AGE")
    whole = [line for line in lines if "whole number" in line]
    assert len(whole) == 1, message
    assert "row 3 (line 5)" in whole[0]
    assert "1.5" in whole[0]


# ---------------------------------------------------------------------------
# Ranges and category codes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "row", "value", "bounds"),
    [
        pytest.param("AGE", 3, 150, "between 18 and 100", id="AGE-150"),
        pytest.param("LIMIT_BAL", 7, 0, "between 1 and 10000000", id="LIMIT_BAL-0"),
        pytest.param("PAY_AMT2", 12, -5, "between 0 and 10000000", id="PAY_AMT2-negative"),
    ],
)
def test_out_of_range_value_names_column_row_and_value(
    tmp_path: Path, raw: pd.DataFrame, column: str, row: int, value: int, bounds: str
) -> None:
    bad = raw.copy()
    bad.loc[row, column] = value

    message = validation_error(tmp_path, bad)

    lines = failure_lines(message, column)
    assert len(lines) == 1, message
    assert bounds in lines[0]
    assert f"row {row} (line {row + 2}) = {value}" in lines[0]
    assert "1 row" in lines[0]


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        pytest.param("SEX", 3, 3, id="SEX-3"),
        pytest.param("EDUCATION", 9, 9, id="EDUCATION-9"),
        pytest.param("PAY_0", 4, 10, id="PAY_0-10"),
    ],
)
def test_unknown_category_code_names_column_row_and_value(
    tmp_path: Path, raw: pd.DataFrame, column: str, row: int, value: int
) -> None:
    bad = raw.copy()
    bad.loc[row, column] = value

    message = validation_error(tmp_path, bad)

    lines = failure_lines(message, column)
    assert len(lines) == 1, message
    assert "is one of the codes" in lines[0]
    assert f"row {row} (line {row + 2}) = {value}" in lines[0]


def test_allowed_codes_listed_include_undocumented_ones(tmp_path: Path, raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[3, "EDUCATION"] = 9

    message = validation_error(tmp_path, bad)

    assert "[0, 1, 2, 3, 4, 5, 6]" in failure_lines(message, "EDUCATION")[0]


# ---------------------------------------------------------------------------
# The target
# ---------------------------------------------------------------------------
def test_nan_in_target_names_target_and_row(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, with_value(raw, 3, TARGET, np.nan))

    lines = failure_lines(message, TARGET)
    assert lines, message
    assert any("NaN" in line and "row 3 (line 5)" in line for line in lines)


def test_inf_in_target_names_target_and_row(tmp_path: Path, raw: pd.DataFrame) -> None:
    message = validation_error(tmp_path, with_value(raw, 3, TARGET, np.inf))

    lines = failure_lines(message, TARGET)
    finite = [line for line in lines if "is finite" in line]
    assert len(finite) == 1, message
    assert "row 3 (line 5) = inf" in finite[0]


def test_label_outside_target_values_is_refused(tmp_path: Path, raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[6, TARGET] = 2

    message = validation_error(tmp_path, bad)

    assert any("row 6 (line 8) = 2" in line for line in failure_lines(message, TARGET)), message


# ---------------------------------------------------------------------------
# Empty files
# ---------------------------------------------------------------------------
def test_zero_byte_file_is_reported_empty(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_bytes(b"")

    with pytest.raises(DataValidationError, match="empty") as caught:
        load_and_validate(tmp_path, csv)

    assert str(csv) in str(caught.value)


def test_empty_gzip_file_is_reported_empty(tmp_path: Path) -> None:
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(b""))

    with pytest.raises(DataValidationError, match="empty") as caught:
        load_and_validate(tmp_path, gz)

    assert str(gz) in str(caught.value)


def test_header_only_file_has_no_data_rows(tmp_path: Path, raw: pd.DataFrame) -> None:
    csv = write_csv(tmp_path, raw.head(0))
    assert len(csv.read_text(encoding="utf-8").splitlines()) == 1

    with pytest.raises(DataValidationError, match="no data rows") as caught:
        load_and_validate(tmp_path, csv)

    assert str(csv) in str(caught.value)


# ---------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------
def test_duplicated_ids_name_id_and_both_rows(tmp_path: Path, raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[10, "ID"] = bad.loc[4, "ID"]  # both rows now hold ID 5

    message = validation_error(tmp_path, bad)

    lines = failure_lines(message, "ID")
    assert len(lines) == 1, message
    assert "unique" in lines[0]
    assert "row 4 (line 6) = 5" in lines[0]
    assert "row 10 (line 12) = 5" in lines[0]


# ---------------------------------------------------------------------------
# Unreadable files
# ---------------------------------------------------------------------------
def test_nonexistent_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_file.csv"

    with pytest.raises(DataValidationError, match="cannot read") as caught:
        load_and_validate(tmp_path, missing)

    assert str(missing) in str(caught.value)


def test_directory_instead_of_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "a_folder.csv"
    folder.mkdir()

    with pytest.raises(DataValidationError, match="cannot read") as caught:
        load_and_validate(tmp_path, folder)

    assert str(folder) in str(caught.value)


def test_garbage_with_gz_suffix_is_not_valid_gzip(tmp_path: Path) -> None:
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(b"\x00\x01\x02 this is not gzip \xff\xfe" * 20)

    with pytest.raises(DataValidationError, match="not a valid gzip file") as caught:
        load_and_validate(tmp_path, gz)

    assert str(gz) in str(caught.value)


def test_truncated_gzip_is_not_valid_gzip(tmp_path: Path, raw: pd.DataFrame) -> None:
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(raw.to_csv(index=False).encode())[:100])

    with pytest.raises(DataValidationError, match="not a valid gzip file") as caught:
        load_and_validate(tmp_path, gz)

    assert str(gz) in str(caught.value)


def test_binary_garbage_csv_cannot_be_read_as_a_table(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_bytes(bytes(range(256)) * 4)

    with pytest.raises(DataValidationError) as caught:
        load_and_validate(tmp_path, csv)

    assert str(csv) in str(caught.value)


# ---------------------------------------------------------------------------
# Integrity
# ---------------------------------------------------------------------------
def test_sha256_mismatch_names_both_hashes(tmp_path: Path, raw: pd.DataFrame) -> None:
    csv = write_csv(tmp_path, raw)
    actual = hashlib.sha256(csv.read_bytes()).hexdigest()
    declared = "0123456789abcdef" * 4
    spec = write_spec(tmp_path, csv, sha256=declared)

    with pytest.raises(DatasetIntegrityError) as caught:
        load_dataset(spec)

    message = str(caught.value)
    assert actual in message
    assert declared in message
    assert str(csv) in message


def test_matching_sha256_is_accepted_in_any_case(tmp_path: Path, raw: pd.DataFrame) -> None:
    csv = write_csv(tmp_path, raw)
    actual = hashlib.sha256(csv.read_bytes()).hexdigest()
    spec = write_spec(tmp_path, csv, sha256=actual.upper())

    _, info = load_dataset(spec)

    assert info.sha256 == actual
    assert info.rows == SUBSET_ROWS


def test_sha256_of_gzip_file_is_of_its_uncompressed_content(tmp_path: Path, raw: pd.DataFrame) -> None:
    content = raw.to_csv(index=False).encode()
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(content))
    spec = write_spec(tmp_path, gz, sha256=hashlib.sha256(content).hexdigest())

    frame, info = load_dataset(spec)

    assert info.sha256 == hashlib.sha256(content).hexdigest()
    pd.testing.assert_frame_equal(frame, raw.reset_index(drop=True))


# ---------------------------------------------------------------------------
# Many offending rows
# ---------------------------------------------------------------------------
def test_only_first_rows_are_listed_with_count_of_the_rest(tmp_path: Path, raw: pd.DataFrame) -> None:
    bad_rows = [2, 5, 8, 11, 14, 17, 20, 23]
    bad = raw.copy()
    bad.loc[bad_rows, "AGE"] = 150

    message = validation_error(tmp_path, bad)

    lines = failure_lines(message, "AGE")
    assert len(lines) == 1, message
    line = lines[0]
    listed = [int(n) for n in re.findall(r"\brow (\d+) \(line", line)]
    assert listed == bad_rows[:MAX_ROWS_SHOWN] == [2, 5, 8, 11, 14]
    assert f"and {len(bad_rows) - MAX_ROWS_SHOWN} more" in line
    assert f"{len(bad_rows)} rows" in line
    assert "row 17 " not in line


def test_failures_in_several_columns_are_all_reported(tmp_path: Path, raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[3, "AGE"] = 150
    bad.loc[8, "SEX"] = 0

    message = validation_error(tmp_path, bad)

    assert "row 3 (line 5) = 150" in failure_lines(message, "AGE")[0]
    assert "row 8 (line 10) = 0" in failure_lines(message, "SEX")[0]


# ---------------------------------------------------------------------------
# A valid file
# ---------------------------------------------------------------------------
def test_valid_subset_passes_and_maps_undocumented_codes(tmp_path: Path, full_raw: pd.DataFrame) -> None:
    # The first rows hold EDUCATION 5 but no 0, 6 or MARRIAGE 0: add a few rows of each.
    extra = pd.concat(
        [
            full_raw[full_raw["EDUCATION"] == 0].head(3),
            full_raw[full_raw["EDUCATION"] == 6].head(4),
            full_raw[full_raw["MARRIAGE"] == 0].head(5),
        ]
    )
    raw = pd.concat([full_raw.head(SUBSET_ROWS), extra]).drop_duplicates("ID").reset_index(drop=True)
    csv = write_csv(tmp_path, raw)

    clean, report = load_and_validate(tmp_path, csv)

    # Expected values computed with pandas on the raw frame.
    education = raw["EDUCATION"].value_counts()
    marriage = raw["MARRIAGE"].value_counts()
    assert all(education.get(code, 0) > 0 for code in (0, 5, 6))
    assert marriage.get(0, 0) > 0

    assert report.rows == len(clean) == len(raw)
    assert set(clean["EDUCATION"]) <= {1, 2, 3, 4}
    assert set(clean["MARRIAGE"]) <= {1, 2, 3}
    assert (clean["EDUCATION"] == 4).sum() == sum(education.get(c, 0) for c in (0, 4, 5, 6))
    assert (clean["MARRIAGE"] == 3).sum() == marriage.get(0, 0) + marriage.get(3, 0)
    for column in ("EDUCATION", "MARRIAGE"):
        unchanged = ~raw[column].isin([0, 5, 6])
        assert (clean.loc[unchanged, column] == raw.loc[unchanged, column]).all()

    found = {(u.column, u.code): (u.rows, u.mapped_to) for u in report.undocumented_codes}
    assert found[("EDUCATION", 0)] == (education[0], 4)
    assert found[("EDUCATION", 5)] == (education[5], 4)
    assert found[("EDUCATION", 6)] == (education[6], 4)
    assert found[("MARRIAGE", 0)] == (marriage[0], 3)
    # PAY_x codes -2 and 0 are kept as they are, but still counted as findings.
    for column in ("PAY_0", "PAY_6"):
        counts = raw[column].value_counts()
        assert found[(column, -2)] == (counts[-2], -2)
        assert found[(column, 0)] == (counts[0], 0)
        assert (clean[column] == raw[column]).all()

    assert report.default_rate == pytest.approx(raw[TARGET].mean())
    assert report.minority_class_share == pytest.approx(min(raw[TARGET].mean(), 1 - raw[TARGET].mean()))
    assert report.missing_values == {}
    assert report.missing_value_share == 0.0
    assert (clean.dtypes == "int64").all()
    untouched = [c for c in raw.columns if c not in ("EDUCATION", "MARRIAGE")]
    pd.testing.assert_frame_equal(clean[untouched], raw[untouched])


def test_extra_columns_are_allowed_and_dropped(tmp_path: Path, raw: pd.DataFrame) -> None:
    raw["NOTE"] = "free text"
    csv = write_csv(tmp_path, raw)

    clean, report = load_and_validate(tmp_path, csv)

    assert "NOTE" not in clean.columns
    assert report.rows == SUBSET_ROWS


def test_full_bundled_dataset_loads_and_validates(
    full_dataset: tuple[DatasetSpec, pd.DataFrame, DataQualityReport],
) -> None:
    spec = load_dataset_spec()
    _, info = load_dataset(spec)
    _, clean, report = full_dataset

    assert info.sha256 == BUNDLED_SHA256 == spec.source.sha256
    assert info.rows == report.rows == len(clean) == 30000
    assert info.columns == 25
    assert int((clean[TARGET] == 1).sum()) == 6636
    assert report.default_rate == pytest.approx(6636 / 30000)
    # The counts the bundled spec's comments quote.
    found = {(u.column, u.code): u.rows for u in report.undocumented_codes}
    assert found[("EDUCATION", 0)] == 14
    assert found[("EDUCATION", 5)] == 280
    assert found[("EDUCATION", 6)] == 51
    assert found[("MARRIAGE", 0)] == 54


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------
def test_split_sizes_add_up_and_parts_are_disjoint(
    full_dataset: tuple[DatasetSpec, pd.DataFrame, DataQualityReport],
) -> None:
    spec, clean, _ = full_dataset
    config = training_config()

    train, valid, test, sizes = split_dataset(clean, spec, config)

    assert (sizes.train, sizes.validation, sizes.test) == (len(train), len(valid), len(test))
    assert len(train) + len(valid) + len(test) == len(clean)
    assert len(test) == pytest.approx(config.test_fraction * len(clean), abs=1)
    assert len(valid) == pytest.approx(config.validation_fraction * len(clean), abs=1)
    ids = [set(part["ID"]) for part in (train, valid, test)]
    assert not ids[0] & ids[1]
    assert not ids[0] & ids[2]
    assert not ids[1] & ids[2]
    assert ids[0] | ids[1] | ids[2] == set(clean["ID"])


def test_split_is_stratified(full_dataset: tuple[DatasetSpec, pd.DataFrame, DataQualityReport]) -> None:
    spec, clean, report = full_dataset

    train, valid, test, sizes = split_dataset(clean, spec, training_config())

    rates = [float((part[TARGET] == 1).mean()) for part in (train, valid, test)]
    assert rates == pytest.approx([sizes.train_default_rate, sizes.validation_default_rate, sizes.test_default_rate])
    assert max(rates) - min(rates) <= 0.005
    assert all(abs(rate - report.default_rate) <= 0.005 for rate in rates)


def test_same_seed_same_split_other_seed_other_split(
    full_dataset: tuple[DatasetSpec, pd.DataFrame, DataQualityReport],
) -> None:
    spec, clean, _ = full_dataset

    first = split_dataset(clean, spec, training_config())
    again = split_dataset(clean, spec, training_config())
    other = split_dataset(clean, spec, training_config(seed=training_config().seed + 1))

    for a, b in zip(first[:3], again[:3], strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert first[3] == again[3]
    assert set(first[2]["ID"]) != set(other[2]["ID"])
    assert set(first[0]["ID"]) != set(other[0]["ID"])


def test_split_of_a_single_class_is_refused(
    full_dataset: tuple[DatasetSpec, pd.DataFrame, DataQualityReport],
) -> None:
    spec, clean, _ = full_dataset
    repaid_only = clean[clean[TARGET] == 0].head(500).reset_index(drop=True)

    with pytest.raises(DataValidationError, match=re.escape(repr(TARGET))):
        split_dataset(repaid_only, spec, training_config())


# ---------------------------------------------------------------------------
# Regressions (each failed before its fix)
# ---------------------------------------------------------------------------
def test_corrupt_gzip_body_is_not_valid_gzip(tmp_path: Path, raw: pd.DataFrame) -> None:
    """Bytes flipped after a valid gzip header used to escape as a bare zlib.error."""
    packed = bytearray(gzip.compress(raw.to_csv(index=False).encode()))
    for i in range(20, 200):
        packed[i] ^= 0xFF
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(bytes(packed))

    with pytest.raises(DataValidationError, match="not a valid gzip file") as caught:
        load_and_validate(tmp_path, gz)

    assert str(gz) in str(caught.value)


@pytest.mark.parametrize("huge", ["9223372036854775808", "10000000000000000000", "100000000000000000000"])
def test_id_too_large_for_int64_is_refused(tmp_path: Path, raw: pd.DataFrame, huge: str) -> None:
    """Huge IDs used to wrap around silently (uint64 → int64) or crash with OverflowError."""
    message = validation_error(tmp_path, with_value(raw, 4, "ID", huge))

    lines = failure_lines(message, "ID")
    assert any("fits in a 64-bit integer" in line and "row 4 (line 6)" in line for line in lines), message


def test_chained_undocumented_codes_are_mapped_once(tmp_path: Path, full_raw: pd.DataFrame) -> None:
    """With {5: 6, 6: 4}, code 5 must become 6 (not 4), and no code 6 is reported."""
    frame = full_raw.head(SUBSET_ROWS).copy()
    frame.loc[[0, 1], "EDUCATION"] = 5
    csv = write_csv(tmp_path, frame)
    spec_data = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text(encoding="utf-8"))
    spec_data["source"]["file"] = str(csv)
    spec_data["source"].pop("sha256")
    spec_data["columns"]["EDUCATION"]["undocumented"] = {0: 4, 5: 6, 6: 4}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec_data, sort_keys=False), encoding="utf-8")
    spec = load_dataset_spec(spec_path)

    loaded, _ = load_dataset(spec)
    clean, report = validate_dataset(loaded, spec)

    fives = int((frame["EDUCATION"] == 5).sum())
    assert (clean.loc[frame["EDUCATION"] == 5, "EDUCATION"] == 6).all()
    education = {u.code: u.rows for u in report.undocumented_codes if u.column == "EDUCATION"}
    assert 6 not in education
    assert education[5] == fives


def test_nan_message_says_the_value_must_not_be_empty(tmp_path: Path, raw: pd.DataFrame) -> None:
    """The NaN message used to read "must pass 'is empty (NaN)'", the opposite of the rule."""
    message = validation_error(tmp_path, with_value(raw, 3, TARGET, np.nan))

    assert any("must not be empty (NaN)" in line for line in failure_lines(message, TARGET)), message
    assert "'is empty (NaN)'" not in message
