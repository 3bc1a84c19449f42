"""Long lists are read a page at a time from the control plane (page_size/page_token) and never whole: a model with
more versions than a page shows the newest page first and the rest behind "Next page"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.conftest import identity_model

from .conftest import Dashboard, watch

PAGED = "paged"
VERSIONS = 57
PAGE_SIZE = 50  # the dashboard's default


@pytest.fixture(scope="module")
def paged(dashboard: Dashboard, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("paged") / "model.onnx"
    path.write_bytes(identity_model("FP32"))
    with dashboard.admin() as admin:
        for number in range(1, VERSIONS + 1):
            admin.run(
                admin.api.register_version(PAGED, path, metrics={"auc": number / 100}, description=f"fit {number}")
            )
    return PAGED


def _versions(page: Page) -> list[int]:
    rows = page.eval_on_selector_all("#versions tbody tr", "rows => rows.map(r => Number(r.cells[0].textContent))")
    return [int(n) for n in rows]


def test_versions_come_a_page_at_a_time_newest_first(
    paged: str, viewer: BrowserContext, dashboard: Dashboard, artifacts: Path
) -> None:
    watched = watch(viewer.new_page())
    page = watched.page
    started = time.monotonic()
    page.goto(f"{dashboard.url}/models/{paged}")
    first_load = time.monotonic() - started
    assert _versions(page) == list(range(VERSIONS, VERSIONS - PAGE_SIZE, -1))
    assert page.locator("text=« First page").count() == 0
    page.screenshot(path=str(artifacts / "models_paged.png"), full_page=True)
    page.click("text=Next page »")
    page.wait_for_url("**page_token=*")
    assert _versions(page) == list(range(VERSIONS - PAGE_SIZE, 0, -1))
    assert page.locator("text=Next page »").count() == 0
    page.click("text=« First page")
    page.wait_for_url(f"{dashboard.url}/models/{paged}")
    assert _versions(page)[0] == VERSIONS
    assert watched.problems() == []
    assert first_load < 5.0
