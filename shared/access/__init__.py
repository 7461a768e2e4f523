"""API keys: a role and a scope unit, stored only as hashes in schema `access`."""
