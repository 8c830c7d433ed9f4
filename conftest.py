"""Root conftest: the harness's pytest plugin (fixtures/plugin.py registers the rest of fixtures/)."""
pytest_plugins = ["fixtures.plugin"]
