"""``python -m macnss_auth`` runs the ``macnss-auth`` command."""

from macnss_auth.cli import main

main()
