"""Single-row LightGBM predictions through the C API's "fast single row" entry points.

``Booster.predict`` costs 100–900 µs for one row (argument checks, a new predictor, an
OpenMP team); ``LGBM_BoosterPredictForMatSingleRowFast`` with a prepared configuration
costs about 15 µs for the probability. The same entry point with the contribution
predict type gives the per-feature contributions (TreeSHAP, as ``pred_contrib=True``).
Results are identical to ``Booster.predict`` (tested). One thread per call: the service
scores requests on its event loop, one at a time.

Not thread-safe: each :class:`SingleRowPredictor` owns its output buffer.
"""

from __future__ import annotations

import ctypes
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _c_str, _safe_call  # type: ignore[attr-defined]

_PREDICT_NORMAL = 0
_PREDICT_CONTRIB = 3
_DTYPE_FLOAT64 = 1


class SingleRowPredictor:
    """Probability (or contributions) of one float64 row, via a prepared LightGBM fast config."""

    def __init__(self, booster: lgb.Booster, contributions: bool = False) -> None:
        self._booster = booster  # keeps the booster (and its C handle) alive as long as this predictor
        self.n_features = booster.num_feature()
        self._handle = ctypes.c_void_p()
        predict_type = _PREDICT_CONTRIB if contributions else _PREDICT_NORMAL
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # all iterations (the stored booster is cut at its best iteration)
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                _c_str("num_threads=1"),
                ctypes.byref(self._handle),
            )
        )
        self._out = np.empty(self.n_features + 1 if contributions else 1, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._out_len_ref = ctypes.byref(self._out_len)
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """Prediction for one contiguous float64 row of ``n_features`` values (a view of an internal buffer)."""
        if row.dtype != np.float64 or row.shape != (self.n_features,) or not row.flags.c_contiguous:
            row = np.ascontiguousarray(row, dtype=np.float64).reshape(self.n_features)
        _safe_call(self._call(self._handle, row.ctypes.data_as(ctypes.c_void_p), self._out_len_ref, self._out_ptr))
        return self._out

    def __del__(self) -> None:
        handle: Any = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            _LIB.LGBM_FastConfigFree(handle)
            handle.value = None
