"""Save a credit-scorer model's LightGBM booster as an MLflow model (runs in the MLflow benchmark venv).

    python mlflow_export.py MODEL_JSON OUT_DIR

The MLflow model is the plain ``mlflow.lightgbm`` flavour of the same booster, with a
signature of the model's feature columns: ``mlflow models serve`` then scores exactly the
trees credit-scorer serves (MLflow does no input validation, derived features, reason codes
or decision log, so the comparison favours MLflow).
"""

from __future__ import annotations

import json
import sys

import lightgbm as lgb
import mlflow.lightgbm
import numpy as np
import pandas as pd
from mlflow.models import infer_signature


def main(model_json: str, out_dir: str) -> None:
    with open(model_json, encoding="utf-8") as handle:
        model = json.load(handle)
    booster = lgb.Booster(model_str=model["booster"])
    columns = model["feature_names"]
    example = pd.DataFrame(np.zeros((1, len(columns))), columns=columns)
    signature = infer_signature(example, booster.predict(example.to_numpy()))
    mlflow.lightgbm.save_model(booster, out_dir, signature=signature)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
