from __future__ import annotations

import pytest

from tests.messages.seed import Seed


@pytest.fixture
def seed(server_env: dict[str, str], api_key: str) -> Seed:
    """Rows in the project of `client` and `azure_client`."""
    return Seed(server_env["ASSISTANTD_DATABASE_URL"], server_env["ASSISTANTD_DATA_DIR"], api_key)
