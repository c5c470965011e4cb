from django.apps import AppConfig


class EmspConfig(AppConfig):
    name = "emsp"
    verbose_name = "Accounts and charging"
