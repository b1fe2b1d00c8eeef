"""Every container, queue and content type of the system: the one place that spells their names.

The data lake (one account per stack) holds the storage contract of docs/architecture.md; the
host storage account holds what the Functions host and the deployment need. A test checks that
no other module outside `tests/` writes one of these names as a string literal.
"""

from __future__ import annotations

# The data lake's containers.
EXPORTS_CONTAINER = "exports"  # {table}/{YYYY-MM-DD}/{table}.csv + _manifest.json
SCORING_INPUT_CONTAINER = "scoring-input"  # {name}.csv: the blob trigger's path
PREDICTIONS_CONTAINER = "predictions"  # {name}/{version}/predictions.csv + _manifest.json
REJECTED_CONTAINER = "rejected"  # {name}/{etag}/{leaf}.csv + error.json
MODELS_CONTAINER = "models"  # the model registry (model/registry/)
MONITORING_CONTAINER = "monitoring"  # drift per batch, quality, dashboards
LAKE_CONTAINERS = (
    EXPORTS_CONTAINER,
    SCORING_INPUT_CONTAINER,
    PREDICTIONS_CONTAINER,
    REJECTED_CONTAINER,
    MODELS_CONTAINER,
    MONITORING_CONTAINER,
)
SCORING_OUTPUT_CONTAINERS = (PREDICTIONS_CONTAINER, REJECTED_CONTAINER, MONITORING_CONTAINER)

# The data lake's queues: fan-out shards of big scoring files, and the poison queues the host
# moves a message to after its last attempt (the queue's own `-poison` twin; the blob trigger's
# fixed poison queue).
SCORING_SHARDS_QUEUE = "scoring-shards"
POISON_SUFFIX = "-poison"
BLOB_TRIGGER_POISON_QUEUE = "webjobs-blobtrigger-poison"


def poison_queue(queue: str) -> str:
    """The queue the Functions host parks a message in after its last failed attempt."""
    return f"{queue}{POISON_SUFFIX}"


LAKE_QUEUES = (SCORING_SHARDS_QUEUE, poison_queue(SCORING_SHARDS_QUEUE), BLOB_TRIGGER_POISON_QUEUE)

# The host storage account: the Functions host's own container (blob receipts, locks) and the
# Flex Consumption deployment package.
HOSTS_CONTAINER = "azure-webjobs-hosts"
PACKAGE_CONTAINER = "app-package"
# The Azure ML workspace storage: the retrain job's code asset (model/ and lake/, infra/upload.py).
CODE_CONTAINER = "code"

# The connection prefix of the data lake, as in the blob trigger's `connection=` argument.
DATA_LAKE = "DataLake"

# Content types of what the system writes.
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/x-ndjson"  # one JSON document per line (request log, promotion log)
MARKDOWN_CONTENT_TYPE = "text/markdown; charset=utf-8"
PNG_CONTENT_TYPE = "image/png"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
BINARY_CONTENT_TYPE = "application/octet-stream"
CONTENT_TYPES = {
    ".csv": CSV_CONTENT_TYPE,
    ".json": JSON_CONTENT_TYPE,
    ".jsonl": JSON_LINES_CONTENT_TYPE,
    ".md": MARKDOWN_CONTENT_TYPE,
    ".png": PNG_CONTENT_TYPE,
    ".html": HTML_CONTENT_TYPE,
}


def content_type(path: str) -> str:
    """The content type a blob gets from its name's suffix (octet-stream when unknown)."""
    dot = path.rfind(".")
    return CONTENT_TYPES.get(path[dot:].lower(), BINARY_CONTENT_TYPE) if dot >= 0 else BINARY_CONTENT_TYPE
