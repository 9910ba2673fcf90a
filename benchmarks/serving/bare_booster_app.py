"""The baseline of the serving benchmark: a bare FastAPI route calling the LightGBM booster on a NumPy row.

No validation, no reason codes, no decision log: the fastest a FastAPI + LightGBM route
can answer. ``uvicorn`` imports ``app`` from here with ``BARE_MODEL`` pointing at a
credit-scorer model file; requests carry the model's feature matrix row(s) directly.

    POST /predict        {"row": [x1, ..., xk]}         -> {"probability_of_default": p}
    POST /predict/batch  {"rows": [[...], [...], ...]}  -> {"probability_of_default": [p1, ...]}
"""

from __future__ import annotations

import json
import os

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

with open(os.environ["BARE_MODEL"], encoding="utf-8") as handle:
    booster = lgb.Booster(model_str=json.load(handle)["booster"])

app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    row = np.asarray(body["row"], dtype=np.float64).reshape(1, -1)
    return JSONResponse({"probability_of_default": float(booster.predict(row)[0])})


@app.post("/predict/batch")
async def predict_batch(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    rows = np.asarray(body["rows"], dtype=np.float64)
    return JSONResponse({"probability_of_default": booster.predict(rows).tolist()})
