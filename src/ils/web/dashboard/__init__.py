"""The admin dashboard at ``/admin/queues``: server-rendered pages over the queue API.

``ils.web.routers.include_routers`` mounts :func:`~ils.web.dashboard.routes.build_router`
once per app; the templates and the one script and stylesheet ship inside this package,
so the dashboard needs no CDN and no build step.
"""
