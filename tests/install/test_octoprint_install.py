"""The plugin installed the way OctoPrint's Plugin Manager installs it (pip, from an archive), on the two
OctoPrint lines people run: it loads with its templates, static files and translations and no warning from
OctoPrint about it, and after ``pip uninstall`` OctoPrint starts clean on the same base directory.

One clean environment per OctoPrint line, shared by the wheel and the sdist (uninstalled in between), so
the cost is one OctoPrint install per line plus a few starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.octoprint_server import OctoPrintServer

from .conftest import Built, Env, make_env, run

#: The lines, as pip ranges; 1.10.3's Flask-Limiter needs an older ``limits`` (docs: FIELD_NOTES).
LINES = {
    "1.10": ("octoprint>=1.10,<1.11", "limits<4"),
    "1.11": ("octoprint>=1.11,<1.12",),
}
#: What OctoPrint logs about a plugin it could not load cleanly, or about its templates (whoever logs it:
#: OctoPrint's loader, or the plugin's own logger as the autoescape warning does), in either order.
PLUGIN_WARNING = re.compile(r"(?=.*crowdfab)(?=.*(WARNING|ERROR|CRITICAL|not being autoescaped))", re.I)

OFFLINE_CHECK = "Could not check crowdfab for updates due to a network error"


@pytest.fixture(scope="session", params=sorted(LINES))
def octoprint_line(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Env]]:
    """A clean environment with one OctoPrint line (and no CrowdFab yet), and the line."""
    line = request.param
    yield line, make_env(tmp_path_factory.mktemp("venv") / f"octoprint-{line}", *LINES[line])


def signed_in(octoprint: OctoPrintServer) -> requests.Session:
    """A browser-like session (the index page is for signed-in users), signed in by the admin's API key
    (a passive login needs no CSRF token, which OctoPrint 1.11 asks of a login by password)."""
    session = requests.Session()
    session.headers.update(octoprint.admin.headers)
    answer = session.post(f"{octoprint.url}/api/login", json={"passive": True}, timeout=10)
    assert answer.status_code == 200, answer.text
    return session


def check_loaded(octoprint: OctoPrintServer) -> None:
    status = octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=10)
    assert status.status_code == 200, status.text
    session = signed_in(octoprint)
    page = session.get(f"{octoprint.url}/", timeout=30).text
    for element in ("tab_plugin_crowdfab", "navbar_plugin_crowdfab", "settings_plugin_crowdfab"):
        assert f'id="{element}"' in page, f"{element} is not on OctoPrint's page"
    for asset in ("js/crowdfab.js", "js/crowdfab_link.js", "css/crowdfab.css"):
        served = session.get(f"{octoprint.url}/plugin/crowdfab/static/{asset}", timeout=10)
        assert served.status_code == 200 and served.content, f"{asset}: HTTP {served.status_code}"
    catalogue = session.get(f"{octoprint.url}/i18n/fr/messages.js", timeout=10).text
    assert "flotte injoignable" in catalogue, "the plugin's French texts are not in the JavaScript catalogue"
    french = octoprint.admin.post(
        f"{octoprint.url}/api/settings", json={"appearance": {"defaultLanguage": "fr"}}, timeout=10
    )
    assert french.status_code == 200, french.text
    assert "Lien avec la flotte" in session.get(f"{octoprint.url}/", timeout=30).text, "the .mo is not used"
    log = octoprint.log_text().splitlines()
    # Off line (as here), Software Update says it could not check: that is all no network costs.
    warnings = [line for line in log if PLUGIN_WARNING.search(line) and OFFLINE_CHECK not in line]
    assert not warnings, "\n".join(warnings)


def check_clean_without_it(octoprint: OctoPrintServer) -> None:
    # Started and operational (launch waited for it); off line OctoPrint logs its own feed errors, so
    # what must be absent is anything about the plugin it no longer has.
    mentions = [line for line in octoprint.log_text().splitlines() if "crowdfab" in line.lower()]
    assert not [line for line in mentions if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line)], mentions
    assert octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=10).status_code == 404


@pytest.mark.parametrize("variant", ["wheel", "sdist"])
def test_installed_from_an_archive_it_loads_and_uninstalls_clean(
    built: Built, octoprint_line: tuple[str, Env], variant: str
) -> None:
    line, env = octoprint_line
    archive: Path = getattr(built, variant)
    run([env.bin("python"), "-m", "pip", "install", "-q", str(archive)])
    octoprint = OctoPrintServer({"fleet_url": ""}, venv_bin=Path(env.bin("octoprint")).parent)
    try:
        octoprint.start()
        version = octoprint.admin.get(f"{octoprint.url}/api/version", timeout=10).json()["server"]
        assert version.startswith(f"{line}."), f"OctoPrint {version} is not of the {line} line"
        check_loaded(octoprint)
        octoprint.stop(keep_basedir=True)
        run([env.bin("python"), "-m", "pip", "uninstall", "-y", "-q", "crowdfab"])
        (octoprint.basedir / "logs" / "octoprint.log").unlink()
        octoprint.launch()
        check_clean_without_it(octoprint)
    finally:
        octoprint.stop()
        # The environment is shared: leave it without CrowdFab whatever happened.
        run([env.bin("python"), "-m", "pip", "uninstall", "-y", "-q", "crowdfab"])
