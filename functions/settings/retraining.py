"""The settings of retraining: when the scheduled retrain runs, where a retrain runs, how far it promotes.

A group of the catalog (`functions/settings/catalog.py` lists it in CATALOG). The rules that decide
*whether* to retrain are in the monitoring group (RETRAIN_QUALITY_TOLERANCE, ...); these say what
happens once one has fired (functions/retrain/request.py).
"""

from __future__ import annotations

from functions.settings.kinds import Cloud, Kind, Setting

RUNNERS = ("azureml", "local", "off")  # functions/retrain/request.py

RETRAINING: tuple[Setting, ...] = (
    Setting(
        "RETRAIN_SCHEDULE",
        Kind.NCRONTAB,
        "when the scheduled retrain runs (UTC; weekly by default: Mondays after the monitor), "
        "whatever the monitoring figures say",
        default="0 0 4 * * 1",
        cloud=Cloud.VALUE,
        stack_key="retrainSchedule",
    ),
    Setting(
        "RETRAIN_RUNNER",
        Kind.CHOICE,
        "where a retrain runs once a rule fired: `azureml` (a command job in the stack's workspace), "
        "`local` (a subprocess of the local stack), `off` (the verdict is only recorded)",
        default="off",
        choices=RUNNERS,
        cloud=Cloud.VALUE,
        stack_key="retrainRunner",
        cloud_value="azureml",
        local="local",
    ),
    Setting(
        "RETRAIN_PROMOTE",
        Kind.LIST,
        "the stages a retrained version is promoted to by itself, in order, each gated against "
        "its champion (prod also needs `python -m model approve`); empty: register only",
        default="dev",
        cloud=Cloud.VALUE,
        stack_key="retrainPromote",
    ),
    Setting(
        "RETRAIN_WORKSPACE",
        Kind.TEXT,
        "the Azure ML workspace's resource id the retraining job is submitted to (RETRAIN_RUNNER=azureml)",
        default="",
        cloud=Cloud.RESOURCE,
    ),
    Setting(
        "RETRAIN_JOB_IDENTITY",
        Kind.TEXT,
        "the resource id of the user-assigned managed identity the retraining job runs as (serverless "
        "compute runs a job as a user-assigned identity attached to the workspace); empty: the job names "
        "no identity",
        default="",
        cloud=Cloud.RESOURCE,
    ),
    Setting(
        "RETRAIN_JOB_CLIENT_ID",
        Kind.TEXT,
        "the client id of that identity, passed to the job as AZURE_CLIENT_ID for its credential; "
        "empty: none",
        default="",
        cloud=Cloud.RESOURCE,
    ),
    Setting(
        "RETRAIN_CODE_ID",
        Kind.TEXT,
        "the resource id of the Azure ML code asset (the project's model/ and lake/) the job runs "
        "(`codeId`); empty: the job names no code asset",
        default="",
        cloud=Cloud.RESOURCE,
    ),
    Setting(
        "RETRAIN_ENVIRONMENT",
        Kind.TEXT,
        "the Azure ML environment `name:version` the job runs in (built from the project's requirements.txt)",
        default="bank-marketing-train:1",
        cloud=Cloud.VALUE,
        stack_key="retrainEnvironment",
    ),
    Setting(
        "RETRAIN_INSTANCE_TYPE",
        Kind.TEXT,
        "the serverless VM size of the retraining job",
        default="Standard_DS3_v2",
        cloud=Cloud.VALUE,
        stack_key="retrainInstanceType",
    ),
)
