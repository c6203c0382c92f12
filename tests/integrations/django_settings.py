"""Django settings for the adapter tests (applied by ``conftest.py`` with ``settings.configure``).

``WACHT_AUTH`` is left out on purpose: each test sets it with ``override_settings`` to a config
trusting its own local issuer.
"""

SECRET_KEY = "wacht-auth-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "tests.integrations.django_urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE = ["wacht_auth.integrations.django.WachtMiddleware"]
DATABASES: dict[str, object] = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wacht_auth.integrations.drf.WachtAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["wacht_auth.integrations.drf.IsWachtAuthenticated"],
    "EXCEPTION_HANDLER": "wacht_auth.integrations.drf.exception_handler",
}
