"""auditor: find what breaks between the layers of a load-balanced web service."""

__version__ = "0.1.0"
