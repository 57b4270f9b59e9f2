"""CrowdFab's OctoPrint plugin: joins this printer to a community print fleet."""

from __future__ import annotations

import octoprint.plugin


class CrowdFabPlugin(octoprint.plugin.SettingsPlugin):
    def get_settings_defaults(self) -> dict:
        return {"fleet_url": "", "enroll_code": ""}

    def get_settings_restricted_paths(self) -> dict:
        # The enrollment code is a secret: only administrators may read it back.
        return {"admin": [["enroll_code"]]}


__plugin_name__ = "CrowdFab"
__plugin_pythoncompat__ = ">=3.9,<4"
__plugin_implementation__ = CrowdFabPlugin()
