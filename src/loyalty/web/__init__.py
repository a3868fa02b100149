"""The web layer: server-rendered pages (Jinja2 + htmx) over the same services as the API.

Areas: staff/ (owner and staff screens, /staff) and the member portal. docs/web.md tells how an area
mounts itself; mount.install(app) wires sessions, CSRF, static files and HTML errors into create_app.
"""
