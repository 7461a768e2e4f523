"""The unit registry: reference data in schema `registry`, written only by `sanwu units load`."""
