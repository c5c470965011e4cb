from django.apps import AppConfig


class EvhubConfig(AppConfig):
    name = "config"
    label = "evhub"
    verbose_name = "evhub"
