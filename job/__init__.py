"""imvjob: a scheduled sweep of running images' vulnerabilities into ImageManifestVulns and reports."""

__version__ = "0.1.0"
