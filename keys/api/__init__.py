"""The management REST API (DRF), mounted at ``/api/v1/``."""
