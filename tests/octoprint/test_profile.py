"""Capabilities read from OctoPrint's printer profiles: the built-in default, centred and round beds, custom
boxes, and the plugin's overrides. Profiles come from OctoPrint's own profile manager defaults."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from octoprint.printer.profile import PrinterProfileManager

from fleet import protocol as p
from fleet.geometry import Box
from octoprint_crowdfab.profile import capabilities_from_profile, profile_volume
from octoprint_crowdfab.runtime import PluginConfig


def profile(**volume: Any) -> dict[str, Any]:
    """OctoPrint's built-in default profile with ``volume`` changed."""
    data = copy.deepcopy(PrinterProfileManager.default)
    data["volume"].update(volume)
    return data


def test_the_default_profile_gives_everything_the_fleet_needs() -> None:
    caps = capabilities_from_profile(profile(), material="PLA")
    assert caps == p.Capabilities(
        volume=Box(0, 0, 0, 200, 200, 200),
        nozzle_diameter=0.4,
        material="PLA",
        bed_shape=p.BedShape.RECTANGULAR,
        heated_bed=True,
        heated_chamber=False,
        extruders=1,
    )


@pytest.mark.parametrize(
    ("volume", "box"),
    [
        ({"width": 250, "depth": 210, "height": 220}, Box(0, 0, 0, 250, 210, 220)),
        ({"width": 200, "depth": 180, "height": 150, "origin": "center"}, Box(-100, -90, 0, 100, 90, 150)),
        (
            {"width": 180, "depth": 180, "height": 300, "formFactor": "circular", "origin": "center"},
            Box(-90, -90, 0, 90, 90, 300),
        ),
        (
            {"custom_box": {"x_min": -5, "y_min": -3, "z_min": 0, "x_max": 235, "y_max": 225, "z_max": 210}},
            Box(-5, -3, 0, 235, 225, 210),
        ),
        # A custom box with a missing bound falls back to width, depth and height.
        ({"custom_box": {"x_min": -5}}, Box(0, 0, 0, 200, 200, 200)),
        ({"width": 0}, None),
        ({"width": "wide"}, None),
        ({"height": float("inf")}, None),
    ],
)
def test_volumes(volume: dict[str, Any], box: Box | None) -> None:
    assert profile_volume(profile(**volume)["volume"]) == box


def test_a_round_bed_and_two_heated_extruders() -> None:
    data = profile(formFactor="circular", origin="center", width=170, depth=170)
    data.update(heatedBed=False, heatedChamber=True)
    data["extruder"].update(count=2, nozzleDiameter=0.6)
    caps = capabilities_from_profile(data)
    assert caps.bed_shape is p.BedShape.CIRCULAR
    assert (caps.heated_bed, caps.heated_chamber, caps.extruders, caps.nozzle_diameter) == (
        False,
        True,
        2,
        0.6,
    )


def test_the_plugin_settings_override_the_profile() -> None:
    settings = {"volume": Box(0, 0, 0, 120, 120, 120).to_dict(), "nozzle_diameter": 0.8, "material": "PETG"}
    config = PluginConfig.from_settings(lambda keys: settings.get(keys[0]), profile())
    caps = config.capabilities
    assert (caps.volume, caps.nozzle_diameter, caps.material) == (Box(0, 0, 0, 120, 120, 120), 0.8, "PETG")
    assert caps.heated_bed is True, "what the settings do not override still comes from the profile"


def test_no_profile_and_no_settings_leave_the_volume_unknown() -> None:
    config = PluginConfig.from_settings(lambda keys: None, None)
    assert config.capabilities == p.Capabilities()


@pytest.mark.parametrize("data", [None, "x", {"volume": "x", "extruder": []}, {"extruder": {"count": True}}])
def test_malformed_profiles_give_unknowns_not_errors(data: Any) -> None:
    caps = capabilities_from_profile(data)
    assert caps.volume is None and caps.extruders is None


def test_the_status_carries_the_new_capabilities_and_older_statuses_still_decode() -> None:
    caps = capabilities_from_profile(profile(formFactor="circular", origin="center"), material="PLA")
    status = p.Status(p.NodeState.IDLE, 1700000000.0, capabilities=caps)
    assert p.decode_status(p.encode_status(status)).capabilities == caps
    older = p.encode_status(p.Status(p.NodeState.IDLE, 1700000000.0, capabilities=p.Capabilities(None, 0.4)))
    assert b"bed_shape" not in older and b"extruders" not in older, "unknown keys are left out"
    assert p.decode_status(older).capabilities == p.Capabilities(None, 0.4)


@pytest.mark.parametrize(
    ("caps", "error"),
    [
        ({"bed_shape": "hexagonal"}, "capabilities.bed_shape must be one of: rectangular, circular"),
        ({"heated_bed": "yes"}, "capabilities.heated_bed must be true or false"),
        ({"heated_chamber": 1}, "capabilities.heated_chamber must be true or false"),
        ({"extruders": 0}, "capabilities.extruders must be a whole number from 1 to 16"),
        ({"extruders": True}, "capabilities.extruders must be a whole number from 1 to 16"),
        ({"extruders": 17}, "capabilities.extruders must be a whole number from 1 to 16"),
    ],
)
def test_malformed_new_capabilities_are_named(caps: dict[str, Any], error: str) -> None:
    payload = json.dumps({"v": p.VERSION, "state": "idle", "ts": 1.0, "capabilities": caps}).encode()
    with pytest.raises(p.ProtocolError, match=error):
        p.decode_status(payload)
