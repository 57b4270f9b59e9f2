"""CrowdFab: a community 3D-printer fleet and its OctoPrint plugin."""

from __future__ import annotations

from setuptools import find_namespace_packages, setup

# The base install: what a Raspberry Pi running the OctoPrint plugin or the headless agent
# (``crowdfab-agent``: a USB printer with no OctoPrint) imports at run time. No server packages here.
NODE_REQUIRES = [
    "paho-mqtt>=2.0,<3",
    "pyserial>=3.5",
    "requests>=2.28",
]

# The central fleet service (``crowdfab-fleet serve``), on top of the base install. One a line, sorted.
FLEET_REQUIRES = [
    "apprise>=1.6,<3",
    "flask>=3.0.3,<4",
    "prometheus-client>=0.17,<1",
    "pydantic>=2.5,<3",
    "sqlalchemy>=2.0,<3",
    "waitress>=3.0",
]

setup(
    name="crowdfab",
    version="0.1.0",
    description="A community 3D-printer fleet: fair job queue, scheduler, fleet service and OctoPrint plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.9",
    # Namespace discovery: the folders of templates, static files and translations are package data.
    packages=find_namespace_packages(include=["fleet", "fleet.*", "octoprint_crowdfab", "octoprint_crowdfab.*"]),
    include_package_data=True,
    zip_safe=False,
    install_requires=NODE_REQUIRES,
    extras_require={
        "fleet": FLEET_REQUIRES,
        # 3.2: waiting for LISTEN's notes with a timeout (several fleet processes on one database).
        "postgres": FLEET_REQUIRES + ["psycopg[binary]>=3.2"],
        "dev": FLEET_REQUIRES
        + [
            "psycopg[binary]>=3.2",
            "aiosmtpd>=1.4",
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            # Works with the Flask/Werkzeug that OctoPrint pins (Werkzeug <3.1); needs Python 3.11+,
            # and the API conformance test is skipped without it.
            'schemathesis>=4.32,<5; python_version >= "3.11"',
            "jsonschema>=4.18",
            "playwright>=1.40",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-pyserial",
            "types-requests",
            "types-waitress",
        ],
    },
    entry_points={
        "octoprint.plugin": ["crowdfab = octoprint_crowdfab"],
        "console_scripts": [
            "crowdfab-fleet = fleet.cli:main",
            "crowdfab-agent = fleet.agent_cli:main",
        ],
    },
)
