"""The persona role matrix of the architecture guide, as data: who gets which role on what.

Kept free of Pulumi so the tests, the offline plan and the docs all read the same table. Scopes
are logical targets (`container:models`, `workspace`, ...); the Rbac component resolves them to
resource ids of the stack being built.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from functions.scoring.paths import INPUT_CONTAINER

# Built-in role definition ids (identical in every tenant).
ROLE_IDS = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}
# Never granted by this program, to people or to the function (checked by the policy pack).
FORBIDDEN_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}

DATA_SCIENTISTS = "data-scientists"
ML_ENGINEERS = "ml-engineers"
FUNCTION = "function-app"
DEPLOYER = "deployer"  # whoever runs `pulumi up`: a person in dev, the pipeline's identity later
PRINCIPAL_TYPES = {DATA_SCIENTISTS: "Group", ML_ENGINEERS: "Group", FUNCTION: "ServicePrincipal"}
PACKAGE_CONTAINER = "app-package"

# The data lake's containers (storage contract) and queues (fan-out; the blob trigger's poison queue).
CONTAINERS = ("exports", INPUT_CONTAINER, "predictions", "rejected", "models", "monitoring")
SHARD_QUEUE = "scoring-shards"
QUEUES = (SHARD_QUEUE, f"{SHARD_QUEUE}-poison", "webjobs-blobtrigger-poison")


@dataclass(frozen=True, order=True)
class Grant:
    principal: str  # DATA_SCIENTISTS | ML_ENGINEERS | FUNCTION
    role: str  # a key of ROLE_IDS
    scope: str  # resource-group | datalake | container:<name> | queue:<name> | workspace | ...

    def assignment_name(self, environment: str, prefix: str) -> str:
        """A GUID derived from what the grant is: re-running never duplicates, renaming never orphans."""
        key = f"{prefix}/{environment}/{self.principal}/{self.role}/{self.scope}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://mlops-azure-functions/rbac/{key}"))


def function_grants(publishes_for_scoring: bool) -> list[Grant]:
    """The function identity: data-plane roles on exactly the containers and queues it uses.

    `scoring-input` is read-only unless the export chain publishes into it
    (`exportPublishTables`), which needs write there (docs/decisions.md, decision 20).
    """
    grants = [
        Grant(FUNCTION, "Storage Blob Data Reader", "container:models"),
        Grant(
            FUNCTION,
            "Storage Blob Data Contributor" if publishes_for_scoring else "Storage Blob Data Reader",
            f"container:{INPUT_CONTAINER}",
        ),
    ]
    grants += [
        Grant(FUNCTION, "Storage Blob Data Contributor", f"container:{name}")
        for name in ("exports", "predictions", "rejected", "monitoring")
    ]
    grants += [Grant(FUNCTION, "Storage Queue Data Contributor", f"queue:{name}") for name in QUEUES]
    # Host storage (AzureWebJobsStorage + the deployment package container): the roles the
    # Functions host documents for identity-based host storage.
    grants += [
        Grant(FUNCTION, "Storage Blob Data Owner", "host-storage"),
        Grant(FUNCTION, "Storage Queue Data Contributor", "host-storage"),
        Grant(FUNCTION, "Key Vault Secrets User", "secret:db-connection-string"),
    ]
    return grants


def people_grants(environment: str) -> list[Grant]:
    """Data scientists work in dev only; ML engineers run preprod and can only read prod."""
    if environment == "dev":
        return [
            Grant(DATA_SCIENTISTS, "AzureML Data Scientist", "workspace"),
            Grant(DATA_SCIENTISTS, "Storage Blob Data Contributor", "datalake"),
            Grant(ML_ENGINEERS, "Reader", "resource-group"),
        ]
    if environment == "preprod":
        return [
            Grant(ML_ENGINEERS, "AzureML Data Scientist", "workspace"),
            Grant(ML_ENGINEERS, "Storage Blob Data Contributor", "container:models"),
        ]
    return [
        Grant(ML_ENGINEERS, "Reader", "resource-group"),
        Grant(ML_ENGINEERS, "Storage Blob Data Reader", "container:predictions"),
        Grant(ML_ENGINEERS, "Storage Blob Data Reader", "container:monitoring"),
    ]


def deployer_grants() -> list[Grant]:
    """`pulumi up` uploads the code package with its own identity (no keys): write on that container only."""
    return [Grant(DEPLOYER, "Storage Blob Data Contributor", f"host-container:{PACKAGE_CONTAINER}")]


def role_matrix(environment: str, publishes_for_scoring: bool) -> list[Grant]:
    return sorted(people_grants(environment) + function_grants(publishes_for_scoring) + deployer_grants())
