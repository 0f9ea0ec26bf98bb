"""Document-level permissions: who may read an item in Confluence, stored so a search can be limited to it."""
