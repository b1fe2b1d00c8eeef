"""Component resources of the Pulumi program, one per concern."""
