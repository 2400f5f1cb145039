"""Write docs/webhook-payload.schema.json from the payload models, so the schema cannot drift from the code.

Usage: ``python docs/make_webhook_schema.py`` (a test checks the committed file is current).
"""

from __future__ import annotations

import json
from pathlib import Path

from vision.dispatch.payload import WebhookPayload

OUT = Path(__file__).resolve().parent / "webhook-payload.schema.json"


def render() -> str:
    return json.dumps(WebhookPayload.model_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
