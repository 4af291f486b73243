"""The weights tests never touch the network: any download attempt fails loudly (tests that exercise the URL
path replace ``torch.hub.download_url_to_file`` with a local copy)."""

from __future__ import annotations

import urllib.request

import pytest
import torch


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted in a test: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
