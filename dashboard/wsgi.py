"""WSGI entry for production servers: ``gunicorn -w 2 -b 0.0.0.0:8050 riskpulse.dashboard.wsgi:server``."""

from riskpulse.settings import get_settings

from .app import create_app

server = create_app(get_settings(), int(get_settings().dashboard_refresh_s * 1000)).server
