"""The plate photo's source as OctoPrint's webcam settings give it (1.10 and 1.11 shapes), login and all."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.node import WebcamLogin
from octoprint_crowdfab.runtime import PluginConfig, plate_reporter
from octoprint_crowdfab.webcam import WebcamSettings, webcam_settings


def reader(settings: dict[str, Any]) -> Any:
    def global_get(path: list[str]) -> Any:
        value: Any = settings
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return global_get


URL = "http://cam.local/?action=snapshot"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, WebcamSettings()),
        ({"webcam": {"snapshot": f" {URL} "}}, WebcamSettings(URL)),  # before the classic webcam plugin
        ({"plugins": {"classicwebcam": {"snapshot": URL}}}, WebcamSettings(URL)),  # 1.10: no login keys
        (
            {
                "plugins": {
                    "classicwebcam": {
                        "snapshot": URL,
                        "snapshotAuth": "digest",
                        "snapshotUsername": "owner",
                        "snapshotPassword": "s3cret",
                        "snapshotSslValidation": False,
                        "snapshotTimeout": 12,
                    }
                }
            },
            WebcamSettings(URL, WebcamLogin("digest", "owner", "s3cret"), verify_tls=False, timeout_s=12.0),
        ),
        (
            {
                "plugins": {
                    "classicwebcam": {"snapshot": URL, "snapshotAuth": "bearer", "snapshotBearerToken": "t"}
                }
            },
            WebcamSettings(URL, WebcamLogin("bearer", token="t")),
        ),
        (
            {
                "plugins": {
                    "classicwebcam": {"snapshot": URL, "snapshotAuth": "none", "snapshotUsername": "x"}
                }
            },
            WebcamSettings(URL),
        ),
        ({"plugins": {"classicwebcam": {"snapshot": URL, "snapshotAuth": "ntlm"}}}, WebcamSettings(URL)),
    ],
)
def test_octoprints_webcam_settings_are_read_with_their_login(
    settings: dict[str, Any], expected: WebcamSettings
) -> None:
    assert webcam_settings(reader(settings)) == expected


def test_the_reporter_asks_the_webcam_with_its_login_and_the_password_is_never_shown() -> None:
    login = WebcamLogin("basic", "owner", "s3cret")
    webcam = WebcamSettings("http://owner:other@cam.local/snap", login, verify_tls=False, timeout_s=3.0)
    config = PluginConfig(fleet_url="http://fleet.lab", printer_id="p", printer_token="t", webcam=webcam)
    reporter = plate_reporter(config)
    assert reporter is not None
    try:
        cam = reporter.webcam
        assert (cam.login, cam.verify_tls, cam.timeout_s, cam.shown) == (
            login,
            False,
            3.0,
            "http://cam.local/snap",
        )
    finally:
        reporter.close()
    assert "s3cret" not in repr(config) and "other" not in repr(config)
