"""Meilisearch: the search backend documents are written to."""
