import os

# A bench run is a test run: its own database, the built-in petitioner-hash secret.
os.environ.setdefault("SANWU_ENVIRONMENT", "test")

from bench.run import app

app()
