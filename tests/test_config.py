import pytest

from vidcap.config import load_schema, validate_config
from vidcap.errors import ConfigError


def test_defaults_filled():
    cfg = validate_config({"manifest": "m.csv"})
    assert cfg["shard_size"] == "auto" and cfg["stages"]["probe"]["check"] == "ends"
    assert cfg["stages"]["probe"]["resources"] == {"mem_mb": 2000, "runtime": 60, "threads": 1, "gpu": 0}
    assert cfg["stages"]["motion"]["enabled"] is True


def test_every_problem_named_with_key_and_allowed_values():
    with pytest.raises(ConfigError) as err:
        validate_config({"shard_size": 0, "stages": {"probe": {"check": "x"}, "motion": {"threshold": "high"}},
                         "name": "has space", "bogus": 1})
    msg = str(err.value)
    for part in ["config key 'manifest': is required but missing",
                 "config key 'shard_size': must be >= 1; got 0",
                 "config key 'stages.probe.check': must be one of 'header', 'first', 'ends'; got 'x'",
                 "config key 'stages.motion.threshold': must be of type number, got 'high' (str)",
                 "config key 'name': must match",
                 "config key 'bogus': is not a known key; allowed here: manifest, media_root, merge, name"]:
        assert part in msg, msg


def test_shard_size_auto_or_a_number():
    from vidcap.io.shards import resolve_shard_size

    assert validate_config({"manifest": "m.csv", "shard_size": 250})["shard_size"] == 250
    with pytest.raises(ConfigError, match="config key 'shard_size': must be of type integer or 'auto', got 'big'"):
        validate_config({"manifest": "m.csv", "shard_size": "big"})
    assert resolve_shard_size("auto", 0) == resolve_shard_size("auto", 2_000_000) == 1000
    assert resolve_shard_size("auto", 2_000_001) == 2000
    assert resolve_shard_size("auto", 100_000_000) == 50_000 and resolve_shard_size(7, 100_000_000) == 7
    for rows in (1, 999_999, 3_333_333, 10**7, 7 * 10**8):
        assert -(-rows // resolve_shard_size("auto", rows)) <= 2000


def test_motion_schema_lists_exactly_the_classifier_knobs():
    from vidcap.motion.classify import DEFAULTS

    props = load_schema()["properties"]["stages"]["properties"]["motion"]["properties"]
    assert set(props) - {"enabled", "append_to_text", "resources"} == set(DEFAULTS)


def test_stage_settings_share_one_parsed_schema_and_hand_out_independent_settings():
    """``stage_settings`` reads the process's one parsed schema (no copy per call: ``clip_rows``
    called on its own checks its settings on every call) and every call's settings are its own: changing one
    call's values, nested defaults included, changes neither the schema nor the next call's."""
    import copy

    from vidcap.config import _load_schema, stage_settings

    before = copy.deepcopy(_load_schema(None))
    first = stage_settings("shots", {})
    first["decode"]["shrink"] = "changed"
    first["dissolves"]["min_change"] = -1.0
    first["adaptive"].clear()
    again = stage_settings("shots", {})
    assert again["decode"]["shrink"] == "spread" and again["dissolves"]["min_change"] > 0 and again["adaptive"]
    assert _load_schema(None) == before
    with pytest.raises(ConfigError, match="stages.shots.decode.shrink"):
        stage_settings("shots", {"decode": {"shrink": "nope"}})
    assert _load_schema(None) == before
