"""What the harness and the emulator share: sites, scopes, PKCE, redaction, errors, the network map.

No pytest and no Playwright here; both sides import this package, and it imports neither.
"""
__version__ = "0.1.0"
