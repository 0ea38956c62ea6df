"""The ``webhook`` action: POST the event as JSON (with a Slack-style ``text``)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from nowcast import defaults
from nowcast.actions import positive_number
from nowcast.errors import ConfigError
from nowcast.events import ActionError, Event, digest_fields, digest_text


class WebhookAction:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        timeout: float,
        ca_file: str | None = None,
        tries: int = defaults.WEBHOOK_TRIES,
        backoff: float = 1.0,
    ) -> None:
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.ca_file = ca_file
        self.tries = tries
        self.backoff = backoff
        # the URL without its query, which may hold a token
        self.target = url.split("?", 1)[0]

    @classmethod
    def from_config(cls, item: dict, where: str) -> WebhookAction:
        value = item["webhook"]
        spec: Any = {"url": value} if isinstance(value, str) else value
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise ConfigError(
                f"{where} must be a URL or a mapping with 'url' (and optional 'headers', "
                f"'timeout', 'ca file'), got {value!r}"
            )
        url = spec["url"]
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{where} must be an https:// (or http://) URL, got {url!r}")
        unknown = set(spec) - {"url", "headers", "timeout", "ca file", "tries"}
        if unknown:
            raise ConfigError(
                f"{where} has unknown key(s) {sorted(unknown)}; expected url, headers, "
                f"timeout, ca file, tries"
            )
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ConfigError(f"{where}: headers must map header names to strings, got {headers!r}")
        timeout = positive_number(
            spec.get("timeout"), f"{where}: timeout", defaults.EVENT_NETWORK_TIMEOUT
        )
        tries = spec.get("tries", defaults.WEBHOOK_TRIES)
        if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
            raise ConfigError(f"{where}: tries must be a whole number of at least 1, got {tries!r}")
        ca_file = spec.get("ca file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError(f"{where}: ca file must be a path, got {ca_file!r}")
        return cls(url, headers, timeout, ca_file, tries)

    def send(self, events: list[Event]) -> str:
        body = {"text": digest_text(events), **digest_fields(events)}
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "nowcast", **self.headers}
        context = None
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=self.ca_file)  # checks certificates
        last = ""
        for attempt in range(self.tries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=context) as r:
                    return f"HTTP {r.status} (try {attempt + 1})"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} {e.reason}"
                if e.code < 500 and e.code != 429:
                    raise ActionError(f"{self.target} answered {last}") from None
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = str(getattr(e, "reason", e))
        raise ActionError(f"{self.target}: {last} (after {self.tries} tries)")
