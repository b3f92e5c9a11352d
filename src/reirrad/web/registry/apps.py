from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "reirrad.web.registry"
    label = "registry"
    verbose_name = "reirrad registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reirrad.web.registry import signals  # noqa: F401  (connects the receivers)
