"""No stampede after a change: one request re-renders a page, the others get the previous version
meanwhile (or wait for that render when there is none), in the real Redis."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from articles import cache
from tests.support.workers import wait_until


class SlowPage:
    """A cached view whose render can be held open, counting its renders."""

    def __init__(self) -> None:
        self.version = 1
        self.renders = 0
        self.gone = False
        self.gate = threading.Event()
        self.gate.set()
        self.view = cache.cache_public_page(self.render, query_params=())

    def render(self, request):
        self.renders += 1
        version = self.version
        assert self.gate.wait(15)
        if self.gone:
            raise Http404("gone")
        return HttpResponse(f"version {version}")

    def get(self, path: str = "/single-flight/") -> str:
        response = self.view(RequestFactory().get(path))
        assert isinstance(response, HttpResponse)
        return response.content.decode()


@pytest.fixture
def page() -> SlowPage:
    return SlowPage()


def test_after_a_change_one_request_renders_and_the_others_get_the_previous_version(page):
    assert page.get() == "version 1"
    cache.bump_generation()
    page.version, page.gate = 2, threading.Event()

    with ThreadPoolExecutor(max_workers=1) as pool:
        renderer = pool.submit(page.get)
        wait_until(lambda: page.renders == 2)  # the renderer is inside the view
        readers = [page.get() for _ in range(20)]
        assert readers == ["version 1"] * 20
        page.gate.set()
        assert renderer.result(timeout=15) == "version 2"

    assert page.get() == "version 2"
    assert page.renders == 2  # one render per change, however many readers came meanwhile


def test_a_page_without_a_previous_version_is_rendered_once_for_all_who_wait(page):
    page.gate.clear()
    with ThreadPoolExecutor(max_workers=6) as pool:
        renderer = pool.submit(page.get, "/single-flight/new/")
        wait_until(lambda: page.renders == 1)
        waiting = [pool.submit(page.get, "/single-flight/new/") for _ in range(5)]
        page.gate.set()
        assert renderer.result(timeout=15) == "version 1"
        assert [reader.result(timeout=15) for reader in waiting] == ["version 1"] * 5
    assert page.renders == 1


def test_a_waiting_reader_renders_itself_when_the_renderer_takes_too_long(page, settings):
    settings.PAGE_RENDER_WAIT = 0.2
    page.gate.clear()
    with ThreadPoolExecutor(max_workers=1) as pool:
        renderer = pool.submit(page.get, "/single-flight/slow/")
        wait_until(lambda: page.renders == 1)
        page.version = 2
        threading.Timer(1.0, page.gate.set).start()  # lets the reader's own render through too
        assert page.get("/single-flight/slow/") == "version 2"
        assert renderer.result(timeout=15) == "version 1"
    assert page.renders == 2


def test_a_page_that_is_gone_is_not_served_in_its_previous_version(page):
    assert page.get() == "version 1"
    cache.bump_generation()
    page.gone = True
    with pytest.raises(Http404):
        page.get()
    _, stored = cache.lookup_page("/single-flight/")
    assert stored == {}  # readers during the next render wait for it instead of getting the old page
