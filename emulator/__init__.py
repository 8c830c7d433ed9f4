"""A local stand-in for Datadog: every site, real hostnames over local TLS, documented OAuth behaviour."""
