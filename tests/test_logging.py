"""Logging configuration: configuring again reaches loggers already in use."""

import structlog

from shared import logging as sanwu_logging


def test_a_logger_used_before_a_second_configure_follows_the_new_configuration() -> None:
    logger = structlog.get_logger("tests.cached")
    sanwu_logging.configure()
    logger.info("first use caches the logger")
    sanwu_logging.configure()  # another service created in the same process

    with structlog.testing.capture_logs() as logs:
        logger.info("captured")

    assert [entry["event"] for entry in logs] == ["captured"]
