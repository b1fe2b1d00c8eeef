"""BlobEvents: the Event Grid system topic on the data lake and the subscription of the blob trigger.

Flex Consumption only runs blob triggers with `source=EventGrid`; the subscription delivers
`BlobCreated` for `scoring-input/*.csv` to the Functions blob extension's webhook. The webhook
needs the app's `blobs_extension` system key, which exists only once the deployed host has
indexed the blob trigger; Event Grid validates the endpoint when the subscription is created, so
with no key it gets a 401. The program hands in the key only after waiting for it during `up`
(infra/cloud.py: blob_extension_key), so the subscription is created once the key exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.eventgrid as eventgrid

from lake.contract import SCORING_INPUT_CONTAINER

BLOB_FUNCTION = "score_blob"
SUBJECT_PREFIX = f"/blobServices/default/containers/{SCORING_INPUT_CONTAINER}/blobs/"


@dataclass(frozen=True)
class BlobEventsArgs:
    topic_name: str
    storage_account_id: pulumi.Input[str]
    app_name: pulumi.Input[str]
    app_host_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    blob_key: pulumi.Input[str]  # the host's blobs_extension key, once it exists (infra/cloud.py)


def webhook_url(host_name: str, key: str) -> str:
    return (
        f"https://{host_name}/runtime/webhooks/blobs?functionName=Host.Functions.{BLOB_FUNCTION}&code={key}"
    )


class BlobEvents(pulumi.ComponentResource):
    def __init__(self, name: str, args: BlobEventsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:BlobEvents", name, None, opts)
        topic = eventgrid.SystemTopic(
            f"{name}-topic",
            system_topic_name=args.topic_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            source=args.storage_account_id,
            topic_type="Microsoft.Storage.StorageAccounts",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        endpoint = pulumi.Output.secret(
            pulumi.Output.all(args.app_host_name, args.blob_key).apply(lambda v: webhook_url(*v))
        )
        self.subscription = eventgrid.SystemTopicEventSubscription(
            f"{name}-score-blob",
            event_subscription_name=f"{BLOB_FUNCTION.replace('_', '-')}-csv",
            system_topic_name=topic.name,
            resource_group_name=args.resource_group_name,
            destination=eventgrid.WebHookEventSubscriptionDestinationArgs(
                endpoint_type="WebHook", endpoint_url=endpoint, minimum_tls_version_allowed="1.2"
            ),
            filter=eventgrid.EventSubscriptionFilterArgs(
                included_event_types=["Microsoft.Storage.BlobCreated"],
                subject_begins_with=SUBJECT_PREFIX,
                subject_ends_with=".csv",
            ),
            event_delivery_schema="EventGridSchema",
            retry_policy=eventgrid.RetryPolicyArgs(
                max_delivery_attempts=30, event_time_to_live_in_minutes=1440
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"topic": topic.name})
