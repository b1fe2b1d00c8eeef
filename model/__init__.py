"""The model lifecycle: schema, features, training, ONNX packaging, registry, serving.

Kept import-light: the function app imports `model` for serving and must not pull in scikit-learn.
"""

# The registered model the whole system trains, promotes and scores unless told otherwise (the
# MODEL_NAME app setting's default, the CLI's `--name`, the demo's and the benchmarks' model).
DEFAULT_MODEL_NAME = "bank-marketing"
RETRAIN_REPORT_FILE = "retrain.json"  # what `python -m model retrain` writes into its --out folder
