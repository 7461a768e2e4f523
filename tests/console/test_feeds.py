"""The warnings the console keeps per root from reporting's feed: the newest version of each."""

from services.console.clients.reporting import EarlyWarning
from services.console.feeds import Followed, _warning


def warning(warning_id: str, version: int, *, cleared: bool) -> EarlyWarning:
    return EarlyWarning.model_validate(
        {
            "warning_id": warning_id,
            "kind": "rising",
            "unit_code": "340722103201",
            "version": version,
            "raised_at": "2018-06-03T09:30:00+08:00",
            "cleared_at": "2018-06-05T10:00:00+08:00" if cleared else None,
            "event_ids": [],
            "detail": {},
        }
    )


def test_the_newest_version_of_each_warning_is_kept_and_older_ones_change_nothing() -> None:
    followed = Followed()
    for item in (
        warning("a", 1, cleared=False),
        warning("b", 1, cleared=False),
        warning("a", 2, cleared=True),  # a cleared
        warning("a", 1, cleared=False),  # an older version again: changes nothing
        warning("b", 1, cleared=False),  # the same version again
    ):
        _warning(followed, item)

    assert followed.warnings["a"].cleared_at is not None
    assert followed.warnings["b"].cleared_at is None
    assert {w: i.version for w, i in followed.warnings.items()} == {"a": 2, "b": 1}
    assert followed.newest["a"] > followed.newest["b"]  # cleared after b was raised
