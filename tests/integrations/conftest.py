"""Integration-test set-up. Django: settings configured in-process, once, from
``django_settings`` (only when Django is installed and nothing configured it before)."""

from __future__ import annotations

try:
    import django
    from django.conf import settings
except ImportError:  # pragma: no cover - the Django tests skip themselves
    django = None  # type: ignore[assignment]

if django is not None and not settings.configured:
    from . import django_settings

    settings.configure(
        **{name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()}
    )
    django.setup()
