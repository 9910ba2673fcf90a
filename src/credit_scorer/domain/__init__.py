"""Pure compute: dataset spec, validation, training, evaluation, fairness, risk, checks, input contract."""
