"""Infrastructure as code (Pulumi, pulumi-azure-native) and the Function App's deployment package."""
