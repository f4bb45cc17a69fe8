"""The update server's web console: fleet overview, devices, releases, rollouts, live progress.

Server-rendered HTML (Jinja2 templates in ``templates/``), a stylesheet and one small script in
``static/`` (served by the server itself: no CDN, no build step). Routes: :mod:`.routes`; who may
see them: :mod:`.session`; the registry reads: :mod:`.queries`; the rollout chart: :mod:`.chart`.
Described in docs/fleet.md ("The console").
"""

from fota_server.console.routes import LOGIN_RATE, console_router, mount_static

__all__ = ["LOGIN_RATE", "console_router", "mount_static"]
