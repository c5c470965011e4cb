"""The portal's callers: a front end with a client key, CPO users of alpha and bravo with sessions."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from emsp.services import portal_client_create

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def client_key(db) -> str:
    _, key = portal_client_create(name="portal front end")
    return key


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def basic(api, client_key) -> APIClient:
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    return api


def _owner(cpo, username: str) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.com")
    cpo.owner = user
    cpo.save()
    return user


def login(api: APIClient, client_key: str, username: str, password: str = PASSWORD):
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    response = api.post("/ocpi/cpo/api/auth/v1/login", {"username": username, "password": password}, format="json")
    api.credentials()
    return response


@pytest.fixture
def alpha_user(alpha) -> User:
    return _owner(alpha, "alpha-owner")


@pytest.fixture
def bravo_user(bravo) -> User:
    return _owner(bravo, "bravo-owner")


def bearer(client_key: str, username: str) -> tuple[APIClient, dict]:
    api = APIClient()
    tokens = login(api, client_key, username).json()["data"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return api, tokens


@pytest.fixture
def as_alpha(alpha_user, client_key) -> APIClient:
    return bearer(client_key, "alpha-owner")[0]


@pytest.fixture
def as_bravo(bravo_user, client_key) -> APIClient:
    return bearer(client_key, "bravo-owner")[0]
