"""Advisory-lock keys come from one function over namespaced names: no two locks share a key."""

from services.applications.repository import STEPS_LOCK
from services.evaluation.live.repository.events import REBUILD_LOCK
from services.evaluation.rebuild.repository import RUNNING_LOCK
from services.reporting.repository import APPLY_LOCK
from shared.locks import LockName, lock_key
from shared.migrate import MIGRATION_LOCK

COUNTIES = ("340722000000", "350101000000", "350102000000", "441900000000")


def test_every_lock_name_has_a_key_of_its_own() -> None:
    keys = [lock_key(name) for name in LockName]
    assert len(set(keys)) == len(keys) == len(LockName)


def test_the_locks_services_take_are_all_different() -> None:
    taken = {
        "migrations": MIGRATION_LOCK,
        "evaluation batches": REBUILD_LOCK,
        "evaluation rebuild": RUNNING_LOCK,
        "reporting writes": APPLY_LOCK,
        "application steps": STEPS_LOCK,
    }
    assert len(set(taken.values())) == len(taken), taken
    assert set(taken.values()) <= {lock_key(name) for name in LockName}


def test_county_locks_differ_from_each_other_and_from_every_name() -> None:
    counties = [lock_key(LockName.evaluation_county, code) for code in COUNTIES]
    assert len(set(counties)) == len(COUNTIES)
    assert not set(counties) & {lock_key(name) for name in LockName}


def test_keys_are_signed_64_bit_and_never_change() -> None:
    for name in LockName:
        assert -(2**63) <= lock_key(name) < 2**63
    # Instances of two releases must still exclude each other while a deployment rolls.
    assert lock_key(LockName.migrations) == 7999913652285934703
    assert lock_key(LockName.reporting_apply) == -4036269018521263590
