"""The dispatcher: decides when each Datasource runs and launches its runs."""
