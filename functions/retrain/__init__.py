"""Retraining in Azure: the Azure ML command job a retrain submits (`azureml.py`, pure; no SDK)."""
