"""Tests of the deployment files: systemd units, Procfile, Docker files."""
