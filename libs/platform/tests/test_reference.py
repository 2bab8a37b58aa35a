"""Reference facts: SDG targets, countries, regions, instance names."""

from __future__ import annotations

import pytest

from ssg.contracts.common.v1 import geography_pb2, sdg_pb2
from ssg.platform.reference import geography, sdg


def test_there_are_169_targets_across_17_goals() -> None:
    assert len(sdg.TARGETS) == 169
    assert sum(len(sdg.goal(n).targets) for n in range(1, 18)) == 169


@pytest.mark.parametrize(("code", "goal"), [("6.4", 6), ("17.19", 17), ("1.b", 1), ("3.d", 3)])
def test_real_targets_map_to_their_goal(code: str, goal: int) -> None:
    assert sdg.goal_of_target(code) == goal


@pytest.mark.parametrize(
    "code", ["6.7", "17.a", "18.1", "0.1", "6", "6.4.1", "", "1.B", " 6.4", "6.4\n"]
)
def test_unreal_targets_are_rejected(code: str) -> None:
    with pytest.raises(ValueError, match="not an SDG target"):
        sdg.goal_of_target(code)


def test_goal_names_match_the_proto_enum() -> None:
    assert sdg.goal(6).name == "Clean water and sanitation"
    assert sdg.from_proto(sdg_pb2.SDG_CLIMATE_ACTION) == 13
    for number in range(1, 18):
        enum_name = sdg_pb2.Sdg.Name(number)  # type: ignore[arg-type]
        assert enum_name.startswith("SDG_")
    with pytest.raises(ValueError):
        sdg.from_proto(sdg_pb2.SDG_UNSPECIFIED)
    with pytest.raises(ValueError):
        sdg.goal(18)


def test_countries_are_iso_alpha3() -> None:
    assert geography.is_country("KEN")
    assert geography.country_name("BRA") == "Brazil"
    assert not geography.is_country("ken")
    assert not geography.is_country("KE")
    with pytest.raises(ValueError, match="alpha-3"):
        geography.country_name("XXX")


def test_regions_and_instances() -> None:
    assert geography.region_name(geography_pb2.REGION_ASIA_PACIFIC) == "ASIA_PACIFIC"
    with pytest.raises(ValueError):
        geography.region_name(geography_pb2.REGION_UNSPECIFIED)
    assert geography.is_instance_name("latin-america-caribbean")
    assert not geography.is_instance_name("Global")
    assert not geography.is_instance_name("a" * 64)
