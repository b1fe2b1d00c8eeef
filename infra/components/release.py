"""CodeRelease: upload the content-named code zip and deploy it to the Flex Consumption app.

The blob is named by the zip's sha256 and the One Deploy call is an ARM deployment named by the
same hash, so a code change is a new blob plus a new deployment (Azure restarts the app on the
new package), and an unchanged tree changes nothing. `remoteBuild` makes the platform install
`requirements.txt` for Linux, so the zip carries sources only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.resources as resources
import pulumi_azure_native.storage as storage

from infra.archive import CodeArchive

ONE_DEPLOY_API_VERSION = "2024-04-01"


@dataclass(frozen=True)
class CodeReleaseArgs:
    archive: CodeArchive
    app_name: pulumi.Input[str]
    host_storage_name: pulumi.Input[str]
    host_blob_endpoint: pulumi.Input[str]
    package_container: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]


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
    package: storage.Blob
    deployment: resources.Deployment

    def __init__(self, name: str, args: CodeReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:CodeRelease", name, None, opts)
        digest = args.archive.sha256[:16]
        self.package = storage.Blob(
            f"{name}-package-{digest}",
            blob_name=args.archive.blob_name,
            account_name=args.host_storage_name,
            container_name=args.package_container,
            resource_group_name=args.resource_group_name,
            type="Block",
            content_type="application/zip",
            source=pulumi.FileAsset(str(args.archive.path)),
            metadata={"sha256": args.archive.sha256},
            opts=pulumi.ResourceOptions(parent=self),
        )
        package_uri = pulumi.Output.concat(
            args.host_blob_endpoint, args.package_container, "/", args.archive.blob_name
        )
        template = pulumi.Output.all(args.app_name, package_uri).apply(lambda v: one_deploy_template(*v))
        self.deployment = resources.Deployment(
            f"{name}-onedeploy-{digest}",
            deployment_name=f"onedeploy-{digest}",
            resource_group_name=args.resource_group_name,
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.package]),
        )
        self.package_uri = package_uri
        self.register_outputs({"package_uri": package_uri, "sha256": args.archive.sha256})
