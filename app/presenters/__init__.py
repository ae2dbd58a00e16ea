"""JSON shapes of the ledger's read models, shared by the API, the staff pages and the CLI."""
