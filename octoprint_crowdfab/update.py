"""The plugin's entry for OctoPrint's Software Update plugin: where to look for a new release, how to
install it (pip from the project's release archive), all configurable in ``plugins.crowdfab.software_update``.

Nothing here touches the network: OctoPrint's Software Update does the checking, on its own schedule,
and says itself when it is off line.
"""

from __future__ import annotations

from typing import Any

#: The project's home; a fork or a private mirror sets ``software_update`` to its own.
PROJECT = "crowdfab/crowdfab"

UPDATE_DEFAULTS: dict[str, Any] = {
    #: ``github_release`` (the repository's releases), ``jsondata`` (a URL answering
    #: ``{"version": "..."}``) or ``none`` (never check).
    "check": "github_release",
    "repository": PROJECT,
    "jsondata": "",
    "prerelease": False,
    #: What pip installs; ``{target_version}`` is the release's tag.
    "archive": f"https://github.com/{PROJECT}/archive/{{target_version}}.zip",
    "project_url": f"https://github.com/{PROJECT}",
}

CHECKS = ("github_release", "jsondata", "none")


def update_information(configured: dict[str, Any], current_version: str) -> dict[str, Any]:
    """The ``check_config`` hook's answer for this plugin; ``{}`` when checks are off or misconfigured
    (a broken entry would make OctoPrint's Software Update report an error on every check)."""
    conf = {**UPDATE_DEFAULTS, **{k: v for k, v in configured.items() if v is not None}}
    check = conf["check"]
    if check not in CHECKS or check == "none":
        return {}
    entry: dict[str, Any] = {
        "displayName": "CrowdFab",
        "displayVersion": current_version,
        "current": current_version,
        "pip": str(conf["archive"]),
    }
    if check == "jsondata":
        if not conf["jsondata"]:
            return {}
        entry.update(type="jsondata", jsondata=str(conf["jsondata"]))
    else:
        user, _, repo = str(conf["repository"]).partition("/")
        if not user or not repo:
            return {}
        entry.update(type="github_release", user=user, repo=repo, prerelease=bool(conf["prerelease"]))
    return {"crowdfab": entry}
