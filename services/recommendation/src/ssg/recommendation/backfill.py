"""``python -m ssg.recommendation.backfill``: store every profile's recommendation list (after
a bulk load or a restore; the worker keeps them current from then on, ADR 0054)."""

from __future__ import annotations

import logging
import sys
import time

from ssg.platform.mongo import make_client
from ssg.platform.settings import ConfigError, load_settings
from ssg.recommendation.bootstrap import backfill_lists, build_store
from ssg.recommendation.settings import RecommendationSettings

log = logging.getLogger("ssg.recommendation.backfill")


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    logging.basicConfig(level=logging.INFO)
    try:
        settings = load_settings(RecommendationSettings)
        client = make_client(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        started = time.monotonic()
        stored = backfill_lists(build_store(settings, client))
        log.info("stored %d lists in %.0f s", stored, time.monotonic() - started)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
