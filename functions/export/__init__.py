"""Database -> CSV in blob storage. A library: no Azure Functions import anywhere in here."""
