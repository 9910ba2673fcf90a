"""Right after `.venv` is installed: compile what credit-scorer imports, and create the project's ZenML state.

`uv pip sync` installs without compiling bytecode (`--compile-bytecode` compiles every module of every
package: 29 s here), and ZenML builds its SQLite database on first use (about 6 s). Left alone, the first
`credit-scorer run` does both on one core, about 20 s. Here two processes run at once, one per core:

1. imports ZenML and creates the project's ZenML state (``./.zenml-state``, or ``$ZENML_CONFIG_PATH``), as
   ``credit-scorer`` itself would on first use;
2. imports the model, metrics, fairness, document and serving libraries.

Importing writes the ``.pyc`` files that every later command reads. Safe to run again (it only imports, and
an existing ZenML state is left as it is). Run by the Makefile: ``.venv/bin/python scripts/compile_bytecode.py``
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

ZENML_AND_STATE = (
    "from credit_scorer.pipelines.zenml_state import use_project_zenml_state, ensure_zenml_store\n"
    "use_project_zenml_state()\n"
    "ensure_zenml_store()\n"
    "import zenml.orchestrators.local.local_orchestrator, zenml.execution.pipeline.dynamic.runner\n"
    "import zenml.integrations.pandas.materializers.pandas_materializer, pyarrow.parquet, typer, rich.table\n"
)
ML_STACK = (
    "import sklearn.metrics, sklearn.model_selection, fairlearn.metrics, lightgbm, pandera.pandas\n"
    "import matplotlib.figure, matplotlib.backends.backend_svg, weasyprint, cyclonedx.output.json\n"
    "import fastapi, uvicorn, jinja2, cryptography\n"
)


def main() -> int:
    started = time.perf_counter()
    env = dict(os.environ, ZENML_ANALYTICS_OPT_IN="false")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    processes = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
        for code in (ZENML_AND_STATE, ML_STACK)
    ]
    failed = [p.args[-1].splitlines()[0] for p in processes if p.wait() != 0]
    if failed:
        print(f"compile_bytecode: failed: {failed}", file=sys.stderr)
        return 1
    print(f"compiled the bytecode of the imported packages and prepared ZenML's state in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
