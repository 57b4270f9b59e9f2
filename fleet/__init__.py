"""CrowdFab fleet: the community print queue, its scheduler and its services."""

__version__ = "0.1.0"
