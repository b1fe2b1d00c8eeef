"""The Azure Function App: thin triggers in `function_app.py`, plain libraries beside them."""
