"""Real-time scoring, without Azure Functions: payloads, row checks, routing between colours, and
the automatic rollback rules. The HTTP function (functions/realtime/) wires these to requests.

Importing this package stays as light as model.serving (no scikit-learn): the Function App runs it.
"""
