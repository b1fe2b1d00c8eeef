"""DataLake: the stack's storage account with the containers of the storage contract and the queues."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.storage as storage

from infra.components.storage import Firewall, blob_protection, private_container, secure_account
from lake.contract import LAKE_CONTAINERS, LAKE_QUEUES


@dataclass(frozen=True)
class DataLakeArgs:
    account_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    sku: str
    retention_days: int
    tags: dict[str, str]
    firewall: Firewall | None = None


class DataLake(pulumi.ComponentResource):
    """Exports, scoring inputs, predictions, rejects, models and monitoring, one account per stack.

    No hierarchical namespace: blob versioning (needed to undo a bad overwrite) is not available
    on HNS accounts, and the pipeline only uses the blob API (decision 21).
    """

    account: storage.StorageAccount
    containers: dict[str, storage.BlobContainer]
    queues: dict[str, storage.Queue]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:DataLake", name, None, opts)
        self.account = secure_account(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=args.sku,
            purpose="data-lake",
            tags=args.tags,
            firewall=args.firewall,
            parent=self,
        )
        blob_protection(
            f"{name}-blob-protection",
            account=self.account,
            resource_group_name=args.resource_group_name,
            retention_days=args.retention_days,
            parent=self,
        )
        self.containers = {
            container: private_container(
                f"{name}-{container}",
                account=self.account,
                container_name=container,
                resource_group_name=args.resource_group_name,
                parent=self,
            )
            for container in LAKE_CONTAINERS
        }
        self.queues = {
            queue: storage.Queue(
                f"{name}-{queue}",
                account_name=self.account.name,
                resource_group_name=args.resource_group_name,
                queue_name=queue,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for queue in LAKE_QUEUES
        }
        self.blob_endpoint = self.account.primary_endpoints.blob
        self.queue_endpoint = self.account.primary_endpoints.queue
        self.register_outputs({"account_id": self.account.id, "blob_endpoint": self.blob_endpoint})
