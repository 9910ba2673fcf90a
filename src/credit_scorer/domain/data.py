"""Load, validate and split a credit dataset described by a :class:`DatasetSpec`.

Pure compute apart from reading the data file: nothing is written here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import zlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from credit_scorer.core.errors import DatasetIntegrityError, DataValidationError
from credit_scorer.domain.config import PACKAGE_PREFIX, ColumnSpec, DatasetSpec, SamplePolicy, TrainingConfig

if TYPE_CHECKING:
    import pandera.pandas as pa

MAX_ROWS_SHOWN = 5
"""How many offending rows an error message lists per column and check."""


INT64_LIMIT = 2**63 - 1
"""Largest magnitude an integer column may hold (values are stored as int64)."""


class DatasetInfo(BaseModel):
    """Provenance of the loaded data: where, which bytes, how big."""

    model_config = ConfigDict(frozen=True)

    name: str
    location: str
    sha256: str
    rows: int
    columns: int
    source_title: str
    citation: str
    licence: str
    doi: str


class UndocumentedCode(BaseModel):
    """An undocumented category code found in the data and what it was mapped to."""

    model_config = ConfigDict(frozen=True)

    column: str
    code: int
    rows: int
    mapped_to: int


class DataQualityReport(BaseModel):
    """Data facts the risk register and the documentation need."""

    model_config = ConfigDict(frozen=True)

    rows: int
    default_rate: float
    minority_class_share: float
    missing_values: dict[str, int]
    missing_value_share: float
    undocumented_codes: list[UndocumentedCode]

    @property
    def undocumented_rows(self) -> int:
        """Number of cells holding an undocumented code."""
        return sum(u.rows for u in self.undocumented_codes)


class SplitSizes(BaseModel):
    """Row counts and default rates of the three splits."""

    model_config = ConfigDict(frozen=True)

    train: int
    validation: int
    test: int
    train_default_rate: float
    validation_default_rate: float
    test_default_rate: float


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------
def read_data_bytes(location: str) -> bytes:
    """Read the raw (uncompressed) bytes of a data file or bundled resource."""
    try:
        if location.startswith(PACKAGE_PREFIX):
            name = location.removeprefix(PACKAGE_PREFIX)
            raw = resources.files("credit_scorer").joinpath("resources", name).read_bytes()
        else:
            raw = Path(location).read_bytes()
    except OSError as exc:
        raise DataValidationError(f"cannot read data file {location}: {exc.strerror or exc}") from exc
    if location.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataValidationError(f"data file {location} is not a valid gzip file: {exc}") from exc
    return raw


def parse_table(raw: bytes, location: str) -> pd.DataFrame:
    """Parse CSV or Parquet bytes into a DataFrame; errors name the file."""
    if not raw.strip():
        raise DataValidationError(f"data file {location} is empty")
    try:
        if location.removesuffix(".gz").endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(io.BytesIO(raw))
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"data file {location} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataValidationError(f"data file {location} cannot be read as a table: {exc}") from exc


def load_dataset(spec: DatasetSpec) -> tuple[pd.DataFrame, DatasetInfo]:
    """Read the spec's data file, check its sha256 when the spec declares one."""
    location = spec.data_location()
    raw = read_data_bytes(location)
    digest = hashlib.sha256(raw).hexdigest()
    if spec.source.sha256 and digest != spec.source.sha256.lower():
        raise DatasetIntegrityError(
            f"data file {location} has sha256 {digest}, but the dataset spec declares "
            f"{spec.source.sha256}; restore the original file or update source.sha256"
        )
    frame = parse_table(raw, location)
    info = DatasetInfo(
        name=spec.name,
        location=location,
        sha256=digest,
        rows=len(frame),
        columns=frame.shape[1],
        source_title=spec.source.title,
        citation=spec.source.citation,
        licence=spec.source.licence,
        doi=spec.source.doi,
    )
    return frame, info


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def _check(name: str, ok: Callable[[pd.Series, pd.Series], pd.Series]) -> pa.Check:
    """A vectorised check that passes missing values (those are `not_nullable`'s job)."""
    import pandera.pandas as pa  # pandera: ~0.5 s, only when data is validated

    def run(series: pd.Series) -> pd.Series:
        return ok(series, _numeric(series)) | series.isna()

    return pa.Check(run, name=name, error=name)


def _isin(values: list[int]) -> Callable[[pd.Series, pd.Series], pd.Series]:
    def ok(_series: pd.Series, numbers: pd.Series) -> pd.Series:
        return numbers.isin(values)

    return ok


def _column_checks(col: ColumnSpec) -> list[pa.Check]:
    checks = [
        _check("is a number", lambda s, n: n.notna()),
        _check("is finite", lambda s, n: pd.Series(np.isfinite(n.to_numpy(dtype=float)), index=s.index)),
    ]
    if col.type == "int":
        checks.append(_check("is a whole number", lambda s, n: (n % 1) == 0))
        checks.append(_check("fits in a 64-bit integer", lambda s, n: n.between(-INT64_LIMIT, INT64_LIMIT)))
    if col.min is not None or col.max is not None:
        lo = -np.inf if col.min is None else col.min
        hi = np.inf if col.max is None else col.max
        checks.append(_check(f"is between {_fmt(lo)} and {_fmt(hi)}", lambda s, n: n.between(lo, hi)))
    allowed = col.allowed_codes()
    if allowed is not None:
        codes = sorted(allowed)
        checks.append(_check(f"is one of the codes {codes}", _isin(codes)))
    return checks


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def dataset_schema(spec: DatasetSpec) -> pa.DataFrameSchema:
    """The pandera schema a dataset must meet, built from its spec."""
    import pandera.pandas as pa

    columns: dict[str, pa.Column] = {}
    for name in spec.required_columns:
        col_spec = spec.columns.get(name, ColumnSpec(type="int"))
        checks = _column_checks(col_spec)
        if name == spec.target.column:
            labels = [spec.target.non_default_value, spec.target.default_value]
            checks.append(_check(f"is a label {labels}", _isin(labels)))
        columns[name] = pa.Column(
            None,
            checks=checks,
            nullable=False,
            unique=name in spec.id_columns,
            required=True,
        )
    return pa.DataFrameSchema(columns, strict=False)


def _describe_failures(failures: pd.DataFrame, source: str) -> str:
    lines = [f"{source} does not meet its dataset spec:"]
    failures = failures.copy()
    failures["column"] = failures["column"].fillna(failures["failure_case"])
    for (column, check), group in failures.groupby(["column", "check"], sort=False, dropna=False):
        if check == "column_in_dataframe":
            lines.append(f"  column {column!r}: missing from the file")
            continue
        rows = group.dropna(subset=["index"])
        verb = {
            "not_nullable": "must not be empty (NaN)",
            "field_uniqueness": "must be unique",
        }.get(str(check), f"must pass '{check}'")
        if rows.empty:
            lines.append(f"  column {column!r} {verb}")
            continue
        shown = ", ".join(
            f"row {int(r['index'])} (line {int(r['index']) + 2}) = {r['failure_case']!r}"
            for _, r in rows.head(MAX_ROWS_SHOWN).iterrows()
        )
        more = f" and {len(rows) - MAX_ROWS_SHOWN} more" if len(rows) > MAX_ROWS_SHOWN else ""
        count = f"{len(rows)} row fails" if len(rows) == 1 else f"{len(rows)} rows fail"
        lines.append(f"  column {column!r} {verb}; {count}: {shown}{more}")
    return "\n".join(lines)


def validate_dataset(
    frame: pd.DataFrame, spec: DatasetSpec, source: str = "the dataset"
) -> tuple[pd.DataFrame, DataQualityReport]:
    """Check a raw table against its spec; return it typed, with undocumented codes mapped.

    Raises :class:`DataValidationError` naming each failing column, the check and the
    first offending rows (0-based row number and file line).
    """
    import pandera.pandas as pa

    if frame.empty:
        raise DataValidationError(f"{source} has no data rows")
    schema = dataset_schema(spec)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise DataValidationError(_describe_failures(exc.failure_cases, source)) from None

    missing = {str(c): int(v) for c, v in frame.isna().sum().items() if v}
    clean = frame[spec.required_columns].copy()
    for name in spec.required_columns:
        col_spec = spec.columns.get(name, ColumnSpec(type="int"))
        clean[name] = clean[name].astype("int64" if col_spec.type == "int" else "float64")

    undocumented: list[UndocumentedCode] = []
    for name, col_spec in spec.columns.items():
        original = clean[name].copy()  # match codes before any mapping, so chains apply once
        for code, mapped in sorted(col_spec.undocumented.items()):
            hits = original == code
            count = int(hits.sum())
            if count:
                undocumented.append(UndocumentedCode(column=name, code=code, rows=count, mapped_to=mapped))
                if mapped != code:
                    clean.loc[hits, name] = mapped

    is_default = clean[spec.target.column] == spec.target.default_value
    default_rate = float(is_default.mean())
    cells = frame.shape[0] * frame.shape[1]
    report = DataQualityReport(
        rows=len(clean),
        default_rate=default_rate,
        minority_class_share=min(default_rate, 1 - default_rate),
        missing_values=missing,
        missing_value_share=sum(missing.values()) / cells if cells else 0.0,
        undocumented_codes=undocumented,
    )
    return clean.reset_index(drop=True), report


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------
def default_labels(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """1 where the applicant defaulted, else 0."""
    return (frame[spec.target.column] == spec.target.default_value).to_numpy(dtype=np.int8)


def check_test_split(frame: pd.DataFrame, spec: DatasetSpec, config: TrainingConfig, sample: SamplePolicy) -> None:
    """Refuse data whose test split would be too small to measure the gate's checks on (DataValidationError).

    The stratified split puts ``ceil(rows × test_fraction)`` rows in the test split, each outcome in
    proportion; both the rows and each outcome's count must reach the policy's minimums.
    """
    labels = default_labels(frame, spec)
    rows = len(labels)
    test_rows = math.ceil(rows * config.test_fraction)
    defaulters = int(labels.sum())
    per_outcome = {"defaulted": defaulters, "repaid": rows - defaulters}
    expected = {outcome: math.floor(count * test_rows / rows) if rows else 0 for outcome, count in per_outcome.items()}
    short = [f"{outcome} {n}" for outcome, n in expected.items() if n < sample.min_test_per_outcome]
    if test_rows < sample.min_test_rows or short:
        raise DataValidationError(
            f"too little data to judge a model: {rows} rows give a test split of {test_rows} rows "
            f"(defaulted {expected['defaulted']}, repaid {expected['repaid']}); the policy needs at least "
            f"{sample.min_test_rows} test rows and {sample.min_test_per_outcome} of each outcome. Supply more rows, or "
            "lower sample.min_test_rows / sample.min_test_per_outcome in a thresholds file (--thresholds), "
            "which is recorded as a threshold version; nothing was recorded"
        )


def split_dataset(
    frame: pd.DataFrame, spec: DatasetSpec, config: TrainingConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, SplitSizes]:
    """Stratified, seeded train / validation / test split."""
    from sklearn.model_selection import train_test_split  # scikit-learn: only when splitting

    labels = default_labels(frame, spec)
    if len(np.unique(labels)) < 2:
        raise DataValidationError(f"column {spec.target.column!r} holds only one class; a scoring model needs both")
    index = np.arange(len(frame))
    rest, test = train_test_split(index, test_size=config.test_fraction, stratify=labels, random_state=config.seed)
    valid_share = config.validation_fraction / (1 - config.test_fraction)
    train, valid = train_test_split(rest, test_size=valid_share, stratify=labels[rest], random_state=config.seed)
    parts = [frame.iloc[np.sort(p)].reset_index(drop=True) for p in (train, valid, test)]
    rates = [float(default_labels(p, spec).mean()) for p in parts]
    sizes = SplitSizes(
        train=len(parts[0]),
        validation=len(parts[1]),
        test=len(parts[2]),
        train_default_rate=rates[0],
        validation_default_rate=rates[1],
        test_default_rate=rates[2],
    )
    return parts[0], parts[1], parts[2], sizes
