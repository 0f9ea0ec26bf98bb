"""Confluence client and content conversion."""
