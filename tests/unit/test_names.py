from datetime import datetime, timezone

import pytest

from mdl.errors import InvalidInput
from mdl.names import timestamp_version, unique_version, validate_alias, validate_name, validate_version


@pytest.mark.parametrize("good", ["lr", "bert-base", "a", "A1.b_c-d", "20261127T171300Z", "x" * 128])
def test_valid_names(good):
    assert validate_name(good) == good and validate_version(good) == good and validate_alias(good) == good


@pytest.mark.parametrize("bad", ["", "-x", ".hidden", "_x", "a/b", "a..b", "a:b", "a b", "x" * 129, "é", "a\n"])
def test_invalid_names_name_the_rule(bad):
    with pytest.raises(InvalidInput) as err:
        validate_name(bad)
    assert err.value.exit_code == 2
    assert "[A-Za-z0-9][A-Za-z0-9._-]*" in (err.value.message + (err.value.hint or ""))


def test_timestamp_version_is_utc_and_has_no_colon():
    t = datetime(2026, 11, 27, 18, 13, 0, tzinfo=timezone.utc)
    assert timestamp_version(t) == "20261127T181300Z"
    assert ":" not in timestamp_version()


def test_unique_version_appends_a_sortable_suffix():
    assert unique_version("v", set()) == "v"
    assert unique_version("v", {"v"}) == "v-01"
    assert unique_version("v", {"v", "v-01", "v-02"}) == "v-03"


def test_a_retry_takes_the_next_suffix_of_the_same_base():
    base = "20261202T022902Z"
    taken = {base} | {f"{base}-{i:02d}" for i in range(1, 5)}
    assert unique_version(f"{base}-04", taken) == f"{base}-05"  # not ...-04-01
    assert unique_version(f"{base}-04", taken | {f"{base}-05", f"{base}-06"}) == f"{base}-07"
    assert unique_version(f"{base}-99", {f"{base}-99"}) == f"{base}-100"
    assert unique_version(f"{base}-100", {f"{base}-100"}) == f"{base}-101"
    assert unique_version(f"{base}-04", {base}) == f"{base}-04"  # free: kept as it is
    assert unique_version("v-1", {"v-1"}) == "v-1-01"  # one digit is not mdl's suffix


def test_retried_versions_keep_sorting_after_their_base():
    base, taken, made = "20261202T022902Z", set(), []
    version = base
    for _ in range(12):  # every attempt loses the race for the id it chose
        version = unique_version(version, taken)
        taken.add(version)
        made.append(version)
    assert made == [base] + [f"{base}-{i:02d}" for i in range(1, 12)]
    assert sorted(made) == made and all(validate_version(v) == v for v in made)
