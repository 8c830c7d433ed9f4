"""Root conftest: the harness's pytest plugins (see fixtures/)."""
pytest_plugins = ["fixtures.targets", "fixtures.reporting", "fixtures.browser", "fixtures.grants", "fixtures.ledger", "fixtures.rotation", "fixtures.gate", "fixtures.policy", "fixtures.integration"]
