"""CodeRelease: upload the content-named code zip and deploy it to the Flex Consumption app.

The blob is named by the zip's sha256 and the One Deploy call is an ARM deployment named by the
same hash, so a code change is a new blob plus a new deployment (Azure restarts the app on the
new package), and an unchanged tree changes nothing. `remoteBuild` makes the platform install
`requirements.txt` for Linux, so the zip carries sources only.

The upload runs during `pulumi up` (never in a preview or the offline plan) with the deploying
identity, after the role assignments exist: see infra/upload.py for why it is not a
`storage.Blob` resource. The uploader returns the URL One Deploy reads, with a short-lived
read-only user-delegation SAS (decision 34): the template holding it is a secret, and since a new
SAS is signed on every `up`, changes to the template of the same deployment are ignored (a new
package is a new deployment name, hence a new resource, anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native.resources as resources

from infra.archive import CodeArchive
from infra.upload import upload_with_identity

ONE_DEPLOY_API_VERSION = "2024-04-01"
# (host blob endpoint, container, archive) -> the package's URL
Uploader = Callable[[str, str, CodeArchive], str]


def package_url(blob_endpoint: str, container: str, archive: CodeArchive) -> str:
    return f"{blob_endpoint}{container}/{archive.blob_name}"


@dataclass(frozen=True)
class CodeReleaseArgs:
    archive: CodeArchive
    app_name: pulumi.Input[str]
    host_blob_endpoint: pulumi.Input[str]
    package_container: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    after: Sequence[pulumi.Input[str]] = ()  # e.g. role assignment ids the upload needs
    uploader: Uploader = field(default=upload_with_identity)


def one_deploy_template(app_name: str, package_uri: str) -> dict:
    """ARM template with the app's `onedeploy` extension: the deployment API Flex Consumption supports."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Web/sites/extensions",
                "apiVersion": ONE_DEPLOY_API_VERSION,
                "name": f"{app_name}/onedeploy",
                "properties": {"packageUri": package_uri, "remoteBuild": True},
            }
        ],
    }


class CodeRelease(pulumi.ComponentResource):
    deployment: resources.Deployment
    package_uri: pulumi.Output[str]

    def __init__(self, name: str, args: CodeReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:CodeRelease", name, None, opts)
        digest = args.archive.sha256[:16]

        def publish(values: list) -> str:
            endpoint, container = values[0], values[1]
            if pulumi.runtime.is_dry_run():
                return package_url(endpoint, container, args.archive)
            return args.uploader(endpoint, container, args.archive)

        signed_uri = pulumi.Output.secret(
            pulumi.Output.all(args.host_blob_endpoint, args.package_container, *args.after).apply(publish)
        )
        self.package_uri = pulumi.Output.all(args.host_blob_endpoint, args.package_container).apply(
            lambda v: package_url(v[0], v[1], args.archive)
        )
        template = pulumi.Output.all(args.app_name, signed_uri).apply(lambda v: one_deploy_template(*v))
        self.deployment = resources.Deployment(
            f"{name}-onedeploy-{digest}",
            deployment_name=f"onedeploy-{digest}",
            resource_group_name=args.resource_group_name,
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            tags={"package-sha256": args.archive.sha256},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["properties.template"]),
        )
        self.register_outputs({"package_uri": self.package_uri, "sha256": args.archive.sha256})
