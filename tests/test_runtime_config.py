"""drift-run's configuration: safety limits that cannot switch the safety layer off, and --config
files that fail with one line naming the file."""

import math

import pytest

from lerobot_policy_drift.runtime.cli import main
from lerobot_policy_drift.runtime.config import SAFETY_RANGES, ConfigError, RunConfig

BASE = {"robot": "so100", "emulate": True, "bundle": "b"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_speed", math.inf),  # used to turn the velocity limit off (15.6 per tick against 3.0)
        ("max_speed", math.nan),
        ("max_speed", 1e6),
        ("max_speed", 0),
        ("max_accel", math.inf),
        ("max_accel", -1),
        ("watchdog_ms", math.inf),
        ("watchdog_ms", 60_000),
        ("fault_after_ms", math.nan),
        ("bus_error_limit", 10_000),
        ("duration_s", math.inf),
    ],
)
def test_safety_limits_are_finite_and_bounded(field, value):
    with pytest.raises(ConfigError, match=field):
        RunConfig.load(None, **BASE, **{field: value})


def test_the_documented_ranges_are_accepted_at_their_ends():
    top = {name: hi for name, (_, hi) in SAFETY_RANGES.items()}
    cfg = RunConfig.load(None, **BASE, **top)
    assert cfg.max_speed == 360 and cfg.bus_error_limit == 100
    with pytest.raises(ConfigError, match="fault_after_ms .* at least watchdog_ms"):
        RunConfig.load(None, **BASE, watchdog_ms=500, fault_after_ms=100)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.yaml", None, "cannot read it (No such file or directory)"),
        ("bad.yaml", "robot: [so100\n", "not valid YAML (line 2"),
        ("bad.json", "{robot: so100", "not valid JSON (line 1"),
        ("list.yaml", "- so100\n- koch\n", "expected a mapping of option names to values, got a list"),
        (
            "tag.yaml",
            '!!python/object/apply:os.system ["touch pwned"]\n',
            "could not determine a constructor",
        ),
    ],
)
def test_config_files_fail_with_one_line(tmp_path, capsys, monkeypatch, name, text, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    assert main(["--config", str(path), "--robot", "so100", "--emulate", "--bundle", "b"]) == 2
    err = capsys.readouterr().err
    assert message in err and f"--config {path}" in err and err.count("\n") == 1, err
    assert "Traceback" not in err and not (tmp_path / "pwned").exists()
